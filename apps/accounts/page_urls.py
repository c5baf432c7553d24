from django.urls import path

from . import views

urlpatterns = [
    path("time-zone/", views.time_zone_edit, name="account_time_zone"),
]
