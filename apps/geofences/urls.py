from django.urls import path

from .api import PingsView, VenuesView

urlpatterns = [
    path("geo/pings/", PingsView.as_view(), name="api-geo-pings"),
    path("venues/", VenuesView.as_view(), name="api-venues"),
]
