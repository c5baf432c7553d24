"""The ASGI middleware of WebSockets: the origin guard (browsers' cross-site connections
are refused with 4403), sessions and users without a per-message ``send`` wrapper, and app
clients' session tokens."""

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

from asgiref.sync import SyncToAsync
from channels.auth import AuthMiddleware, get_user
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import OriginValidator
from channels.sessions import CookieMiddleware, InstanceSessionWrapper, SessionMiddleware
from django.conf import settings
from django.db import connections

from creatorcommerce.process import PerProcess

# Threads of the process's own for sockets' database work (``db_in_pool``), kept for the
# process's life (not an event loop's: a test's loops come and go).
SOCKET_DB_THREADS = 4
_socket_threads: PerProcess[ThreadPoolExecutor] = PerProcess(
    lambda: ThreadPoolExecutor(max_workers=SOCKET_DB_THREADS, thread_name_prefix="socket-db")
)


def db_in_pool(func):
    """``database_sync_to_async`` on a few threads of the process's own
    (``SOCKET_DB_THREADS``), not on the one thread that every thread-sensitive call of the
    process shares. A viewer socket's handshake made three trips to that thread (the
    session's user, Channels' connection clean-up, the viewer's join), each waiting on Redis
    or PostgreSQL: in a reconnect storm 2,000 handshakes queued there past daphne's 5 s
    handshake timeout (docs/performance.md, "Reconnect storm"). For work that needs no
    particular thread: no transaction spans two calls, and each call hands its thread's
    database connections back (to the pool) when it ends."""

    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            connections.close_all()  # so a call never starts with an old one

    return SyncToAsync(run, thread_sensitive=False, executor=_socket_threads.get())


class _Refuse4403(AsyncWebsocketConsumer):
    async def connect(self):
        # Accept, then close with the code: a refusal before accept reaches the client as a
        # bare HTTP 403 without the protocol's close code.
        await self.accept()
        await self.close(code=4403)


class OriginGuard(OriginValidator):
    """Channels' origin check against ALLOWED_HOSTS, with two differences: a refused
    connection closes with 4403 (docs/streams.md, "The WebSocket protocol"), and a connection without an Origin header
    (an app client, not a browser) is let through; viewer tokens bind it further."""

    def __init__(self, application):
        super().__init__(application, settings.ALLOWED_HOSTS)

    def valid_origin(self, parsed_origin):
        return parsed_origin is None or self.validate_origin(parsed_origin)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("OriginGuard is for WebSocket connections")
        origin = None
        for name, value in scope.get("headers", []):
            if name == b"origin":
                try:
                    origin = urlparse(value.decode("latin1"))
                except (UnicodeDecodeError, ValueError):
                    return await _Refuse4403()(scope, receive, send)
        if self.valid_origin(origin):
            return await self.application(scope, receive, send)
        return await _Refuse4403()(scope, receive, send)


class SessionTokenAuth:
    """App clients authenticate WebSockets like their API calls: an ``X-Session-Token``
    header (allauth headless). Browsers keep using the session cookie (AuthMiddlewareStack,
    inside this one); a cookie-authenticated user is never replaced."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        token = None
        for name, value in scope.get("headers", []):
            if name == b"x-session-token":
                token = value.decode("latin1")
        user = scope.get("user")
        if token and (user is None or not user.is_authenticated):
            resolved = await database_sync_to_async(_user_for_session_token)(token)
            if resolved is not None:
                scope = {**scope, "user": resolved}
        return await self.application(scope, receive, send)


def _user_for_session_token(token: str):
    from allauth.headless.internal.sessionkit import authenticate_by_x_session_token

    result = authenticate_by_x_session_token(token)
    return result[0] if result else None


class WebSocketSessionMiddleware(SessionMiddleware):
    """Channels' SessionMiddleware (``scope["session"]`` from the cookie) without wrapping
    ``send``: its wrapper saves the session and sets the cookie on ``http.response.start``,
    which a WebSocket never sends, yet it costs a coroutine and two session look-ups on
    every frame, i.e. per socket per broadcast message (apps/streams/broadcast.py)."""

    async def __call__(self, scope, receive, send):
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, send)


class WebSocketAuthMiddleware(AuthMiddleware):
    """Channels' ``AuthMiddleware``, but without a session cookie the user is anonymous at
    once, and with one the user is read on the sockets' threads (``db_in_pool``), not on
    the process's one sync thread."""

    async def resolve_scope(self, scope):
        if scope["session"].session_key is None:
            from django.contrib.auth.models import AnonymousUser

            scope["user"]._wrapped = AnonymousUser()
        else:
            scope["user"]._wrapped = await db_in_pool(get_user.func)(scope)


def WebSocketAuthStack(inner):
    """Channels' ``AuthMiddlewareStack`` with ``WebSocketSessionMiddleware`` and
    ``WebSocketAuthMiddleware``."""
    return CookieMiddleware(WebSocketSessionMiddleware(WebSocketAuthMiddleware(inner)))
