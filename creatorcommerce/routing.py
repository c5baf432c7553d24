"""WebSocket routes of every app, gathered in one list for the ASGI router."""

from apps.streams.routing import websocket_urlpatterns as stream_routes

websocket_urlpatterns: list = [*stream_routes]
