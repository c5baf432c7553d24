"""The media server's authorisation hook (MediaMTX ``authHTTPAddress``).

MediaMTX POSTs ``{user, password, token, ip, action, path, protocol, id, query}`` for every
publish and read; 200 allows, anything else denies. A creator's encoder publishes to
``live/<stream id>`` with the stream's ingest token (as password, token or ``?token=``);
viewers read it with a valid viewer token for that stream.

The media server is not a client to throttle per request (a big stream's viewers all come
through it): it proves itself with ``MEDIA_HOOK_SECRET`` (``?secret=`` in the hook's URL),
and what is limited is guessing: wrong hook secrets per calling address, and wrong ingest
tokens per publishing client address (``ip`` in the body, which only an authenticated
media server can tell us). See docs/streams.md, "Media server".
"""

from __future__ import annotations

import hmac
import logging
import re
from urllib.parse import parse_qs

from django.conf import settings
from django.core.cache import cache

from .exceptions import InvalidViewerToken
from .models import Stream
from .tokens import viewer_token_stream

log = logging.getLogger(__name__)

# The one path form a stream is published and read at: ``live/<id>``, the id without
# leading zeros, nothing before or after (no slashes, no newline).
PATH_RE = re.compile(r"live/([1-9][0-9]{0,17})")
READ_ACTIONS = {"read", "playback"}
FAILURE_WINDOW_SECONDS = 600


class MediaDecision:
    ALLOW, UNAUTHENTICATED, FORBIDDEN, TOO_MANY = 200, 401, 403, 429
    NOT_CONFIGURED = 503


def _failure_key(kind: str, address: str) -> str:
    return f"streams:media-failures:{kind}:{address}"


def _failures(kind: str, address: str) -> int:
    return int(cache.get(_failure_key(kind, address)) or 0)


def _failed(kind: str, address: str) -> None:
    """Count a failure for ``address`` in the current window (it starts with the first)."""
    key = _failure_key(kind, address)
    if cache.add(key, 1, FAILURE_WINDOW_SECONDS):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between the two calls: a new window
        cache.add(key, 1, FAILURE_WINDOW_SECONDS)


def media_caller_check(*, secret: str | None, address: str) -> int:
    """Whether the hook's caller is the media server: ALLOW, UNAUTHENTICATED (wrong or no
    secret), TOO_MANY (that address guessed too often) or NOT_CONFIGURED (no
    ``MEDIA_HOOK_SECRET`` with DEBUG off: every call is refused)."""
    expected = settings.MEDIA_HOOK_SECRET
    if not expected:
        if settings.DEBUG:
            return MediaDecision.ALLOW  # the local demo runs MediaMTX without a secret
        log.error("MEDIA_HOOK_SECRET is not set: the media hook refuses every call (docs/streams.md)")
        return MediaDecision.NOT_CONFIGURED
    # The right secret is never locked out: the media server may share its address with a
    # guesser (a NAT, one host, a proxy not in TRUSTED_PROXIES), and refusing it would stop
    # every stream. What the limit stops is a flood of wrong guesses; a long random secret
    # (docs/streams.md) is what makes guessing hopeless.
    if isinstance(secret, str) and hmac.compare_digest(secret.encode(), expected.encode()):
        return MediaDecision.ALLOW
    if _failures("secret", address) >= settings.MEDIA_HOOK_FAILURES_PER_10MIN:
        return MediaDecision.TOO_MANY
    _failed("secret", address)
    return MediaDecision.UNAUTHENTICATED


def _credential(body: dict) -> str:
    for field in ("token", "password"):
        value = body.get(field)
        if isinstance(value, str) and value:
            return value
    query = body.get("query")
    if isinstance(query, str) and query:
        return (parse_qs(query).get("token") or [""])[0]
    return ""


def media_authorize(body) -> int:
    """200, 401 (no or wrong credentials), 403 (not allowed for this path or action) or 429
    (the publishing client sent too many wrong ingest tokens). The caller is the media
    server (``media_caller_check``)."""
    if not isinstance(body, dict):
        return MediaDecision.FORBIDDEN
    action, path = body.get("action"), body.get("path")
    if not isinstance(action, str) or not isinstance(path, str):
        return MediaDecision.FORBIDDEN
    match = PATH_RE.fullmatch(path)
    if match is None:
        return MediaDecision.FORBIDDEN
    stream = (
        Stream.objects.filter(pk=int(match.group(1)))
        .exclude(status__in=[Stream.Status.ENDED, Stream.Status.CANCELLED])
        .first()
    )
    if stream is None:
        return MediaDecision.FORBIDDEN
    credential = _credential(body)
    if not credential:
        return MediaDecision.UNAUTHENTICATED
    if action == "publish":
        client = body.get("ip") if isinstance(body.get("ip"), str) and body.get("ip") else "unknown"
        client = client[:64]
        if _failures("ingest", client) >= settings.MEDIA_HOOK_FAILURES_PER_10MIN:
            return MediaDecision.TOO_MANY
        if hmac.compare_digest(credential.encode(), stream.ingest_token.encode()):
            return MediaDecision.ALLOW
        _failed("ingest", client)
        return MediaDecision.UNAUTHENTICATED
    if action in READ_ACTIONS:
        try:
            token_stream = viewer_token_stream(token=credential)
        except InvalidViewerToken:
            return MediaDecision.UNAUTHENTICATED
        return MediaDecision.ALLOW if token_stream == stream.pk else MediaDecision.FORBIDDEN
    return MediaDecision.FORBIDDEN  # api, metrics, pprof: never through this hook
