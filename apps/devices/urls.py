from django.urls import path

from . import api

urlpatterns = [
    path("devices/", api.DevicesView.as_view(), name="api-devices"),
    path("devices/cues/", api.CuesView.as_view(), name="api-device-cues"),
    path("devices/<int:pk>/cues/", api.DeviceCuesView.as_view(), name="api-device-cue-fire"),
]
