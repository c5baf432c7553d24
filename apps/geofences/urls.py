from django.urls import path

from . import api

urlpatterns = [
    path("me/coupons/", api.MyCouponsView.as_view(), name="api-my-coupons"),
]
