"""The media server's authorisation hook (MediaMTX ``authHTTPAddress``).

MediaMTX POSTs ``{user, password, token, ip, action, path, protocol, id, query}`` for every
publish and read; 200 allows, anything else denies. A creator's encoder publishes to
``live/<stream id>`` with the stream's ingest token (as password, token or ``?token=``);
viewers read it with a valid viewer token for that stream.
"""

from __future__ import annotations

import hmac
import re
from urllib.parse import parse_qs

from .exceptions import InvalidViewerToken
from .models import Stream
from .tokens import viewer_token_stream

PATH_RE = re.compile(r"^live/(\d{1,18})$")
READ_ACTIONS = {"read", "playback"}


class MediaDecision:
    ALLOW, UNAUTHENTICATED, FORBIDDEN = 200, 401, 403


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
    """200, 401 (no or wrong credentials) or 403 (not allowed for this path or action)."""
    if not isinstance(body, dict):
        return MediaDecision.FORBIDDEN
    action, path = body.get("action"), body.get("path")
    if not isinstance(action, str) or not isinstance(path, str):
        return MediaDecision.FORBIDDEN
    match = PATH_RE.match(path.strip("/"))
    if match is None:
        return MediaDecision.FORBIDDEN
    stream = Stream.objects.filter(pk=int(match.group(1))).exclude(status=Stream.Status.ENDED).first()
    if stream is None:
        return MediaDecision.FORBIDDEN
    credential = _credential(body)
    if not credential:
        return MediaDecision.UNAUTHENTICATED
    if action == "publish":
        ok = hmac.compare_digest(credential.encode(), stream.ingest_token.encode())
        return MediaDecision.ALLOW if ok else MediaDecision.UNAUTHENTICATED
    if action in READ_ACTIONS:
        try:
            token_stream = viewer_token_stream(token=credential)
        except InvalidViewerToken:
            return MediaDecision.UNAUTHENTICATED
        return MediaDecision.ALLOW if token_stream == stream.pk else MediaDecision.FORBIDDEN
    return MediaDecision.FORBIDDEN  # api, metrics, pprof: never through this hook
