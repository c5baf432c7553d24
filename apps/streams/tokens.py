"""Viewer tokens: short-lived, bound to one stream, one viewer and the page's Origin.

A token is a signed, timestamped value (django.core.signing, keyed by SECRET_KEY), so any
web process can check it without a database read, and it cannot be forged or moved to
another stream, viewer or site.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.utils import timezone

from .exceptions import InvalidViewerToken

SALT = "creatorcommerce.streams.viewer-token"


@dataclass(frozen=True)
class ViewerClaims:
    stream_id: int
    user_id: int | None
    session_key: str | None
    origin: str | None


def viewer_token_issue(
    *, stream_id: int, user_id: int | None, session_key: str | None, origin: str | None
) -> tuple[str, datetime]:
    """A token for one viewer of one stream: the signed-in user, or else the anonymous
    session; and the Origin of the page that asked for it."""
    payload = {"s": stream_id, "u": user_id, "k": None if user_id else session_key, "o": origin}
    token = signing.dumps(payload, salt=SALT, compress=True)
    return token, timezone.now() + timedelta(seconds=settings.VIEWER_TOKEN_TTL_SECONDS)


def viewer_token_check(
    *, token: str | None, stream_id: int, user_id: int | None, session_key: str | None
) -> ViewerClaims:
    """The claims of a valid token for this stream and this viewer; raises
    InvalidViewerToken otherwise. The Origin is returned for the caller to compare."""
    if not token:
        raise InvalidViewerToken()
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.VIEWER_TOKEN_TTL_SECONDS)
    except signing.BadSignature as exc:  # includes SignatureExpired
        raise InvalidViewerToken() from exc
    claims = ViewerClaims(data.get("s"), data.get("u"), data.get("k"), data.get("o"))
    if claims.stream_id != stream_id:
        raise InvalidViewerToken()
    if claims.user_id is not None:
        if claims.user_id != user_id:
            raise InvalidViewerToken()
    elif not claims.session_key or claims.session_key != session_key:
        raise InvalidViewerToken()
    return claims


def viewer_token_stream(*, token: str | None) -> int:
    """The stream a valid, unexpired viewer token was issued for (no viewer binding: for a
    media server, which sees neither the session nor the page's Origin)."""
    if not token:
        raise InvalidViewerToken()
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.VIEWER_TOKEN_TTL_SECONDS)
    except signing.BadSignature as exc:
        raise InvalidViewerToken() from exc
    if not isinstance(data, dict) or not isinstance(data.get("s"), int):
        raise InvalidViewerToken()
    return data["s"]
