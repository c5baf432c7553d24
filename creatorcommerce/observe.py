"""What every HTTP request goes through to be observed: its id, its latency by route, and
the access log line (docs/operations.md, "Metrics" and "Logs").

``ObservedHTTP`` wraps the HTTP side of the ASGI application (``creatorcommerce/asgi.py``),
outermost, so that the time measured is the time the server had the request: from the
request reaching the application to its answer's last byte, the wait for a thread of the
sync pool (``creatorcommerce/handlers.py``) included. That wait is what grows under
overload; a middleware inside Django would not see it. It takes the request's id (a
well-formed ``X-Request-ID``, else a new one), binds it for everything the request does,
answers it in ``X-Request-ID``, and after the answer observes
``cc_http_request_duration_seconds`` and writes the access line.

``RequestObserverMiddleware`` (first in ``MIDDLEWARE``) tells it the route: the URL
pattern that matched (``api/v1/orders/<int:pk>/``, never the raw path, so the label's
values are bounded by the URLconf). Where the application is not served through the ASGI
wrapper (Django's test client, a WSGI server), the middleware does the wrapper's work
itself.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from .logs import accepted_request_id, new_request_id, reset_request_id, set_request_id
from .metrics import HTTP_REQUEST_SECONDS

access_log = logging.getLogger("creatorcommerce.access")

SCOPE_KEY = "creatorcommerce.observe"
UNMATCHED = "unmatched"  # no URL pattern matched (404s), or answered before routing

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
_children: dict[tuple[str, str, str], object] = {}


def record(*, route: str | None, method: str, status: int, seconds: float, request_id: str) -> None:
    """Observe one answered request; write its access line when ``ACCESS_LOG`` is on."""
    route = route or UNMATCHED
    key = (route, method if method in _METHODS else "other", _CLASSES.get(status // 100, "other"))
    child = _children.get(key)
    if child is None:  # bounded: routes x methods x classes
        child = _children[key] = HTTP_REQUEST_SECONDS.labels(*key)
    child.observe(seconds)
    if settings.ACCESS_LOG:
        # The route, not the path: paths can hold secrets (a private calendar feed's token).
        access_log.info(
            "%s %s %s %.1f ms",
            method,
            route,
            status,
            seconds * 1000,
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "request_id": request_id,
            },
        )


def route_of(request) -> str | None:
    match = getattr(request, "resolver_match", None)
    return match.route if match is not None else None


class ObservedHTTP:
    """ASGI middleware for ``http`` scopes (anything else passes straight through)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        request_id = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                request_id = accepted_request_id(value)
                break
        request_id = request_id or new_request_id()
        # The middleware writes the route here; a new scope dict, as ASGI servers expect
        # theirs left unchanged.
        note = {"request_id": request_id, "route": None}
        scope = {**scope, SCOPE_KEY: note}
        header = (b"x-request-id", request_id.encode())
        status = 0

        async def observed_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = set_request_id(request_id)
        try:
            await self.app(scope, receive, observed_send)
        except BaseException:
            status = status or 500  # the server answers 500 for it
            raise
        finally:
            reset_request_id(token)
            if status:  # else the client left before any answer: nothing was served
                record(
                    route=note["route"],
                    method=scope["method"],
                    status=status,
                    seconds=time.perf_counter() - started,
                    request_id=request_id,
                )


class RequestObserverMiddleware:
    """First in ``MIDDLEWARE``: hands ``ObservedHTTP`` the route that matched; without the
    wrapper, does its work (id, header, latency, access line) itself."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        scope = getattr(request, "scope", None)
        note = scope.get(SCOPE_KEY) if scope is not None else None
        if note is not None:
            request.request_id = note["request_id"]
            response = self.get_response(request)
            note["route"] = route_of(request)
            return response
        started = time.perf_counter()
        request_id = accepted_request_id(request.META.get("HTTP_X_REQUEST_ID")) or new_request_id()
        request.request_id = request_id
        token = set_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        response["X-Request-ID"] = request_id
        record(
            route=route_of(request),
            method=request.method,
            status=response.status_code,
            seconds=time.perf_counter() - started,
            request_id=request_id,
        )
        return response
