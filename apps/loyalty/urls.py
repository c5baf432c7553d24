from django.urls import path

from . import api

urlpatterns = [
    path("me/badges/", api.MyBadgesView.as_view(), name="api-my-badges"),
]
