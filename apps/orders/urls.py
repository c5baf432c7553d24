from django.urls import path

from . import api

urlpatterns = [
    path("orders/", api.OrdersView.as_view(), name="api-orders"),
    path("orders/<int:pk>/", api.OrderDetailView.as_view(), name="api-order"),
    path("me/payment-methods/", api.PaymentMethodsView.as_view(), name="api-payment-methods"),
    path("me/address/", api.AddressView.as_view(), name="api-address"),
]
