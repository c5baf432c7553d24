"""WebSocket consumers of a stream: viewers, and the creator's control room.

Thin by design: they check who may connect, send the snapshot, and hand the stream's spine
events, turned into the messages of the public protocol (docs/streams.md, "The WebSocket protocol") by a
``StreamFeed`` (apps/streams/feed.py), to the socket. Counters are coalesced: a socket gets at
most STREAM_PUSHES_PER_SECOND ``stock`` (and ``deal``) messages a second, each with absolute
values and a rising ``seq``, and the last one always carries the final state.

Viewers are many, so they share: a viewer socket has no channel-layer channel and joins no
group; the stream's ``StreamBroadcaster`` in this process (apps/streams/broadcast.py)
receives each event once and writes one encoded frame to all of the process's viewers of the
stream. The control room (a few sockets, more messages) keeps Channels' per-socket groups,
with its own ``StreamFeed``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.utils import await_many_dispatch
from django.conf import settings

from creatorcommerce.admin import is_staff
from creatorcommerce.websocket import db_in_pool

from . import broadcast
from .exceptions import InvalidViewerToken, StreamNotFound
from .extras import Viewer, snapshot_extras
from .feed import StreamFeed
from .panels import control_relay_for
from .selectors import stream_get, stream_pinned_skus, stream_sales, stream_snapshot
from .services import (
    control_groups,
    presence_count,
    presence_join,
    presence_leave,
    shop_control_groups,
    stream_groups,
)
from .tokens import viewer_token_check

log = logging.getLogger(__name__)

CLOSE_TOKEN = 4401
CLOSE_ORIGIN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_FLOOD = 4029
# A frame the viewer socket cannot take: binary, longer than STREAM_CLIENT_MESSAGE_MAX_CHARS,
# not JSON, or JSON nested too deep to parse (docs/streams.md, close codes).
CLOSE_BAD_FRAME = 4400


def _origin(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"origin":
            return value.decode("latin1")
    return None


class _StreamSocket(AsyncWebsocketConsumer):
    """What viewer and control-room sockets share."""

    stream_id: int

    async def refuse(self, code: int) -> None:
        # Accept first: a close before accept is an HTTP 403 and the client never sees the code.
        await self.accept()
        await self.close(code=code)

    async def send_json(self, content: dict) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))


class ViewerConsumer(_StreamSocket):
    """``/ws/streams/{id}/?token=<viewer token>``: fed by the stream's broadcaster."""

    broadcaster: broadcast.StreamBroadcaster | None = None
    counted = False

    async def __call__(self, scope, receive, send):
        """``AsyncConsumer.__call__`` without a channel of its own: the socket only listens to
        its client; the broadcaster writes the stream's messages with ``base_send``."""
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            await await_many_dispatch([receive], self.dispatch)
        except StopConsumer:
            pass
        finally:
            # Cancelled, or crashed, before disconnect(): the socket must still stop counting
            # and leave its broadcaster (a crash used to leave it in the viewer count forever).
            if self.broadcaster is not None:
                self.broadcaster.detach_soon(self)
                self.broadcaster = None
            if self.counted:
                self.counted = False
                await asyncio.shield(sync_to_async(presence_leave)(stream_id=self.stream_id))

    async def dispatch(self, message):
        """Channels' ``dispatch`` without its trip to the process's one sync thread before
        every message (``aclose_old_connections``; a handshake, a close, every ping): this
        socket's database work runs in ``db_in_pool`` calls, which hand their connections
        back themselves."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self):
        self.stream_id = int(self.scope["url_route"]["kwargs"]["stream_id"])
        self.recent: deque[float] = deque()
        user = self.scope.get("user")
        session = self.scope.get("session")
        token = (parse_qs(self.scope.get("query_string", b"").decode()).get("token") or [None])[0]
        try:
            claims = viewer_token_check(
                token=token,
                stream_id=self.stream_id,
                user_id=user.pk if user is not None and user.is_authenticated else None,
                session_key=getattr(session, "session_key", None),
            )
        except InvalidViewerToken:
            return await self.refuse(CLOSE_TOKEN)
        if claims.origin != _origin(self.scope):
            return await self.refuse(CLOSE_ORIGIN)
        # Attach (the broadcaster's groups are joined; the first viewer of the stream in this
        # process starts it) first, then read the snapshot: an event that raced the read is
        # newer and reaches the broadcaster; ``welcome`` merges it, and an older one is
        # dropped by its version. Sockets connecting together share one read (a reconnect
        # storm: apps/streams/broadcast.py).
        try:
            self.broadcaster = await broadcast.attach(self.stream_id, self._pinned)
            snapshot, since = await self.broadcaster.snapshot(self._snapshot)
        except StreamNotFound:
            return await self.refuse(CLOSE_NOT_FOUND)
        fields_since = self.broadcaster.mark()
        extras, viewers = await db_in_pool(self._join)(claims, snapshot["shop_id"])
        await self.accept()
        await self.broadcaster.welcome(
            self, snapshot, since=since, fields_since=fields_since, viewers=viewers, **extras
        )

    async def _snapshot(self) -> dict:
        return await db_in_pool(stream_snapshot)(stream_id=self.stream_id)

    def _join(self, claims, shop_id: int) -> tuple[dict, int]:
        """What apps above streams add to the snapshot for this viewer (e.g. the experiments'
        ``experience``; apps/streams/extras.py), then the viewer counted and the count read:
        one trip to a thread."""
        viewer = Viewer(
            stream_id=self.stream_id,
            shop_id=shop_id,
            user_id=claims.user_id,
            session_key=None if claims.user_id else claims.session_key,
        )
        extras = snapshot_extras(viewer)
        presence_join(stream_id=self.stream_id)
        self.counted = True
        return extras, presence_count(stream_id=self.stream_id)

    async def _pinned(self) -> list[dict]:
        return await db_in_pool(stream_pinned_skus)(stream_id=self.stream_id)

    async def disconnect(self, code):
        if self.broadcaster is not None:
            broadcaster, self.broadcaster = self.broadcaster, None
            await broadcaster.detach(self)
        if self.counted:
            self.counted = False
            await sync_to_async(presence_leave)(stream_id=self.stream_id)

    async def receive(self, text_data=None, bytes_data=None):
        now = time.monotonic()
        self.recent.append(now)
        while self.recent and self.recent[0] < now - 10:
            self.recent.popleft()
        if len(self.recent) > settings.STREAM_CLIENT_MESSAGES_PER_10S:
            await self.close(code=CLOSE_FLOOD)
            return
        if text_data is None or len(text_data) > settings.STREAM_CLIENT_MESSAGE_MAX_CHARS:
            await self.close(code=CLOSE_BAD_FRAME)
            return
        try:
            message = json.loads(text_data)
        except (ValueError, RecursionError):  # 2,000 "[" raise RecursionError, not ValueError
            await self.close(code=CLOSE_BAD_FRAME)
            return
        if isinstance(message, dict) and message.get("type") == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_json({"type": "error", "code": "unknown_message", "message": 'Send {"type": "ping"}.'})


class ControlRoomConsumer(_StreamSocket):
    """``/ws/streams/{id}/control/``: the stream's creator and staff only. Few sockets: each
    joins the stream's groups (and ``control.<id>``, and the shop's ``control.shop.<shop>``)
    itself and has its own ``StreamFeed``. Events of apps above streams reach it through
    their registered relays (``apps.streams.panels.control_relay``)."""

    feed: StreamFeed | None = None

    async def connect(self):
        self.stream_id = int(self.scope["url_route"]["kwargs"]["stream_id"])
        self.groups_joined: set[str] = set()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await self.refuse(CLOSE_TOKEN)
        try:
            allowed = await database_sync_to_async(self._may_control)(user)
        except StreamNotFound:
            return await self.refuse(CLOSE_NOT_FOUND)
        if not allowed:
            return await self.refuse(CLOSE_ORIGIN)
        self.feed = StreamFeed(self.stream_id, publish=self._publish, regroup=self._regroup)
        pins = await database_sync_to_async(stream_pinned_skus)(stream_id=self.stream_id)
        join, _ = self.feed.follow(pins)
        groups = stream_groups(self.stream_id) + control_groups(self.stream_id) + shop_control_groups(self.shop_id)
        await self._regroup(groups + join, [])
        # Events that race the read wait in this socket's channel until connect() returns.
        since = self.feed.changes
        snapshot = await database_sync_to_async(self._snapshot)()
        async with self.feed.lock:
            merged = await self.feed.adopt(snapshot, since=since)
            await self.accept()
            await self.send_json({"type": "snapshot", **snapshot, **merged, "seq": self.feed.seq})

    async def disconnect(self, code):
        if self.feed is not None:
            self.feed.close()
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def dispatch(self, message):
        """Spine events (every message type but ``websocket.*``) never touch the database,
        so they skip the per-message hop to a thread that Channels makes to close stale DB
        connections."""
        if message["type"].startswith("websocket."):
            return await super().dispatch(message)
        await self.feed.handle(message)
        if message["type"] == "order.placed":
            await self.order_sale(message)
        elif message["type"] == "deal.scheduled":
            # The deal list follows the admin: a deal scheduled, or its terms changed.
            deal = {k: v for k, v in message["payload"].items() if k != "stream"}
            await self.send_json({"type": "deal_scheduled", "deal": deal})
        elif message["type"] == "stream.updated":
            # The creator edited the stream in the admin: the header follows (title, start).
            payload = message["payload"]
            await self.send_json(
                {"type": "stream_updated", **{k: payload[k] for k in ("title", "status", "starts_at", "ends_at")}}
            )
        elif message["type"] == "deal.cancelled":
            await self.send_json({"type": "deal_cancelled", "id": message["payload"]["id"]})
        elif message["type"] == "deal.deleted":
            await self.send_json({"type": "deal_deleted", "id": message["payload"]["id"]})
        elif message["type"] == "order.refunded":
            # A refunded order no longer counts: the totals, chart and list are read again.
            sales = await database_sync_to_async(self._sales)()
            if sales is not None:
                await self.send_json({"type": "sales", "sales": sales})
        elif (relay := control_relay_for(message["type"])) is not None:
            # An app above streams speaks to the room (apps/streams/panels.py), e.g. devices'
            # cue log and device status.
            try:
                out = relay(message)
            except Exception:
                log.exception("control-room relay of %s failed", message["type"])
                return
            if out is not None:
                await self.send_json(out)

    async def _publish(self, messages: list[dict]) -> None:
        for message in messages:
            await self.send_json(message)

    async def _regroup(self, join: list[str], leave: list[str]) -> None:
        for group in join:
            if group not in self.groups_joined:
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups_joined.add(group)
        for group in leave:
            await self.channel_layer.group_discard(group, self.channel_name)
            self.groups_joined.discard(group)

    def _may_control(self, user) -> bool:
        stream = stream_get(stream_id=self.stream_id)
        self.shop_id = stream.shop_id
        return is_staff(user) or (user.is_creator and stream.shop.owner_id == user.pk)

    def _sales(self) -> dict | None:
        try:
            return stream_sales(stream=stream_get(stream_id=self.stream_id))
        except StreamNotFound:
            return None

    def _snapshot(self) -> dict:
        snapshot = stream_snapshot(stream_id=self.stream_id)
        snapshot.pop("shop_id")
        stream = stream_get(stream_id=self.stream_id)
        return {**snapshot, "sales": stream_sales(stream=stream), "viewers": presence_count(stream_id=self.stream_id)}

    async def order_sale(self, message):
        p = message["payload"]
        await self.send_json(
            {
                "type": "sale",
                "order": p["order"],
                "total": p["total"],
                "currency": p["currency"],
                "lines": p["lines"],
                "at": message["created_at"],
            }
        )

    async def receive(self, text_data=None, bytes_data=None):
        await self.send_json(
            {"type": "pong"}
            if text_data and '"ping"' in text_data
            else {"type": "error", "code": "read_only", "message": "Use the API to change the stream."}
        )
