from django.urls import path

from . import api

urlpatterns = [
    path("geo/pings/", api.PingsView.as_view(), name="api-geo-pings"),
    path("venues/", api.VenuesView.as_view(), name="api-venues"),
    path("me/coupons/", api.MyCouponsView.as_view(), name="api-my-coupons"),
]
