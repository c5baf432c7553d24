from django.urls import path

from . import api

urlpatterns = [
    path("streams/", api.StreamsView.as_view(), name="api-streams"),
    path("streams/<int:pk>/", api.StreamDetailView.as_view(), name="api-stream"),
    path("streams/<int:pk>/viewer-token", api.ViewerTokenView.as_view(), name="api-stream-viewer-token"),
    path("streams/<int:pk>/start", api.StreamStartView.as_view(), name="api-stream-start"),
    path("streams/<int:pk>/end", api.StreamEndView.as_view(), name="api-stream-end"),
    path("streams/<int:pk>/cancel", api.StreamCancelView.as_view(), name="api-stream-cancel"),
    path("streams/<int:pk>/early-deals/", api.EarlyDealsView.as_view(), name="api-stream-early-deals"),
    path("streams/<int:pk>/pins/", api.PinsView.as_view(), name="api-stream-pins"),
    path("streams/<int:pk>/pins/<str:code>/", api.PinDetailView.as_view(), name="api-stream-pin"),
    path(
        "streams/<int:pk>/deals/<int:deal_id>/open",
        api.DealActionView.as_view(action="open"),
        name="api-stream-deal-open",
    ),
    path(
        "streams/<int:pk>/deals/<int:deal_id>/close",
        api.DealActionView.as_view(action="close"),
        name="api-stream-deal-close",
    ),
]
