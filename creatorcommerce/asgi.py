"""ASGI entry point: HTTP and WebSockets through one ProtocolTypeRouter.

Runs unchanged under daphne (`daphne creatorcommerce.asgi:application`) and uvicorn
(`uvicorn creatorcommerce.asgi:application`).
"""

import gc
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorcommerce.settings")

if "daphne.server" in sys.modules:  # served by daphne: oversized headers answer JSON 431
    from creatorcommerce.twisted_http import install

    install()

from creatorcommerce.handlers import get_asgi_application

# Django must be set up before anything imports models (consumers, auth middleware).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from creatorcommerce.observe import ObservedHTTP  # noqa: E402
from creatorcommerce.routing import websocket_urlpatterns  # noqa: E402
from creatorcommerce.scheduler import EmbeddedScheduler  # noqa: E402
from creatorcommerce.websocket import OriginGuard, SessionTokenAuth, WebSocketAuthStack  # noqa: E402

application = EmbeddedScheduler(
    ProtocolTypeRouter(
        {
            # Outermost on HTTP: latency as the server had the request, and its id.
            "http": ObservedHTTP(django_asgi_app),
            "websocket": OriginGuard(WebSocketAuthStack(SessionTokenAuth(URLRouter(websocket_urlpatterns)))),
        }
    )
)


def _freeze_startup_objects() -> None:
    """Keep start-up objects out of the garbage collector's full collections.

    After start-up the process holds ~134,000 tracked objects (settings, models, URLconf,
    templates), none of them garbage; a full collection scanned them all, 40-70 ms during
    which no request runs (measured here), once every few thousand requests: the buy's p99.
    Loading the URLconf (which imports every view) first, then ``gc.freeze()``, leaves
    full collections only the objects made since. Forking servers share the frozen pages.
    """
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (imports the views)
    gc.collect()
    gc.freeze()


_freeze_startup_objects()
