"""HTML pages of a buyer's orders (included at the site root)."""

from django.urls import path

from . import views

urlpatterns = [
    path("orders/", views.my_orders, name="my-orders"),
    path("orders/<int:pk>/", views.my_order, name="my-order"),
]
