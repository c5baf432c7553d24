from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/streams/<int:stream_id>/", consumers.ViewerConsumer.as_asgi()),
    path("ws/streams/<int:stream_id>/control/", consumers.ControlRoomConsumer.as_asgi()),
]
