"""ASGI entry point: HTTP and WebSockets through one ProtocolTypeRouter.

Runs unchanged under daphne (`daphne creatorcommerce.asgi:application`) and uvicorn
(`uvicorn creatorcommerce.asgi:application`).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorcommerce.settings")

from creatorcommerce.handlers import get_asgi_application

# Django must be set up before anything imports models (consumers, auth middleware).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from creatorcommerce.routing import websocket_urlpatterns  # noqa: E402
from creatorcommerce.scheduler import EmbeddedScheduler  # noqa: E402
from creatorcommerce.websocket import OriginGuard, SessionTokenAuth, WebSocketAuthStack  # noqa: E402

application = EmbeddedScheduler(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": OriginGuard(WebSocketAuthStack(SessionTokenAuth(URLRouter(websocket_urlpatterns)))),
        }
    )
)
