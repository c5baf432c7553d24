"""Viewer tokens: short-lived, bound to one stream, one viewer and the page's Origin, and
opaque.

A token is the viewer's claims encrypted and authenticated (Fernet: AES-128-CBC and
HMAC-SHA256, with its issue time) under a key derived from SECRET_KEY, so any web process
can check it without a database or cache read, it cannot be forged or moved to another
stream, viewer or site, and nothing in it is readable: the token travels in URLs (the
socket's, the media server's ``?token=``) that reach access logs, and a signed token showed
the user id, the session key and the Origin to anyone reading them.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.utils import timezone

from .exceptions import InvalidViewerToken

SALT = b"creatorcommerce.streams.viewer-token.v2"
_ciphers: dict[tuple[str, ...], MultiFernet] = {}


@dataclass(frozen=True)
class ViewerClaims:
    stream_id: int
    user_id: int | None
    session_key: str | None
    origin: str | None


def _cipher() -> MultiFernet:
    """Keyed by SECRET_KEY (new tokens) and SECRET_KEY_FALLBACKS (still accepted)."""
    secrets = (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ()))
    cipher = _ciphers.get(secrets)
    if cipher is None:
        keys = [
            HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT, info=b"fernet").derive(secret.encode())
            for secret in secrets
        ]
        cipher = _ciphers[secrets] = MultiFernet([Fernet(base64.urlsafe_b64encode(key)) for key in keys])
    return cipher


def viewer_token_issue(
    *, stream_id: int, user_id: int | None, session_key: str | None, origin: str | None
) -> tuple[str, datetime]:
    """A token for one viewer of one stream: the signed-in user, or else the anonymous
    session; and the Origin of the page that asked for it."""
    payload = {"s": stream_id, "u": user_id, "k": None if user_id else session_key, "o": origin}
    token = _cipher().encrypt(json.dumps(payload, separators=(",", ":")).encode()).decode()
    return token, timezone.now() + timedelta(seconds=settings.VIEWER_TOKEN_TTL_SECONDS)


def _claims(token: str | None) -> ViewerClaims:
    """The claims of an authentic, unexpired token; raises InvalidViewerToken otherwise."""
    if not token or not isinstance(token, str) or len(token) > 2048:
        raise InvalidViewerToken()
    try:
        data = json.loads(_cipher().decrypt(token.encode(), ttl=max(settings.VIEWER_TOKEN_TTL_SECONDS, 0)))
    except (InvalidToken, ValueError, UnicodeError) as exc:  # forged, tampered or expired
        raise InvalidViewerToken() from exc
    if settings.VIEWER_TOKEN_TTL_SECONDS <= 0 or not isinstance(data, dict) or not isinstance(data.get("s"), int):
        raise InvalidViewerToken()
    return ViewerClaims(data["s"], data.get("u"), data.get("k"), data.get("o"))


def viewer_token_check(
    *, token: str | None, stream_id: int, user_id: int | None, session_key: str | None
) -> ViewerClaims:
    """The claims of a valid token for this stream and this viewer; raises
    InvalidViewerToken otherwise. The Origin is returned for the caller to compare."""
    claims = _claims(token)
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
    return _claims(token).stream_id
