"""WebSocket consumers of a stream: viewers, and the creator's control room.

Thin by design: they check who may connect, send the snapshot, and turn spine events
(delivered to the groups they joined) into the messages of the public protocol
(contract.md, "Streams"). Counters are coalesced per socket: whatever arrives, a socket
gets at most STREAM_PUSHES_PER_SECOND ``stock`` (and ``deal``) messages a second, each with
absolute values, and the last one always carries the final state.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from creatorcommerce.admin import is_staff

from .exceptions import InvalidViewerToken, StreamNotFound
from .selectors import stream_get, stream_pinned_skus, stream_sales, stream_snapshot
from .services import control_groups, presence_count, presence_join, presence_leave, stream_groups
from .tokens import viewer_token_check

CLOSE_TOKEN = 4401
CLOSE_ORIGIN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_FLOOD = 4029


def _origin(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"origin":
            return value.decode("latin1")
    return None


class _StreamSocket(AsyncWebsocketConsumer):
    """What viewer and control-room sockets share: groups, coalesced counters, events."""

    stream_id: int

    async def dispatch(self, message):
        """Spine events (every message type but ``websocket.*``) never touch the database,
        so they skip the per-message hop to a thread that Channels makes to close stale DB
        connections: a third of the server's time at 500 viewers (py-spy)."""
        if message["type"].startswith("websocket."):
            return await super().dispatch(message)
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def refuse(self, code: int) -> None:
        # Accept first: a close before accept is an HTTP 403 and the client never sees the code.
        await self.accept()
        await self.close(code=code)

    async def join(self, snapshot: dict) -> None:
        self.groups_joined: set[str] = set()
        self.sku_groups: dict[str, str] = {}
        self.stock_versions: dict[str, int] = {}
        self.pin_levels: dict[str, int | None] = {}
        self.deal_versions: dict[int, int] = {}
        self.pending_stock: dict[str, int] = {}
        self.pending_ts = 0.0
        self.pending_deals: dict[str, dict | None] = {}
        self.seq = 0
        self.last_push = 0.0
        self.flush_handle = None
        self.interval = 1.0 / max(settings.STREAM_PUSHES_PER_SECOND, 1)
        for group in self.base_groups():
            await self._group_add(group)
        await self._follow_pins(snapshot["pins"])

    def base_groups(self) -> list[str]:
        return stream_groups(self.stream_id)

    async def _group_add(self, group: str) -> None:
        if group not in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.add(group)

    async def _follow_pins(self, pins: list[dict]) -> None:
        """Join the groups of pinned SKUs, leave those of unpinned ones."""
        wanted = {p["sku"]: f"sku.{p['sku_id']}" for p in pins}
        for code, group in list(self.sku_groups.items()):
            if code not in wanted:
                await self.channel_layer.group_discard(group, self.channel_name)
                self.groups_joined.discard(group)
                del self.sku_groups[code]
        for code, group in wanted.items():
            await self._group_add(group)
            self.sku_groups[code] = group
        for pin in pins:
            if "level" in pin:
                self.pin_levels[pin["sku"]] = pin["level"]
            self.stock_versions[pin["sku"]] = max(self.stock_versions.get(pin["sku"], -1), pin.get("version", 0))
            deal = pin.get("deal")
            if deal:
                self.deal_versions[deal["id"]] = max(self.deal_versions.get(deal["id"], -1), deal["version"])

    async def disconnect(self, code):
        if getattr(self, "flush_handle", None) is not None:
            self.flush_handle.cancel()
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def send_json(self, content: dict) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

    # -- coalescing ----------------------------------------------------------------------

    async def _push_or_schedule(self) -> None:
        """Send now if the last push is at least one interval old (the common case once
        counters are coalesced at the source: no timer, no task); else once, later."""
        if self.flush_handle is not None:
            return
        loop = asyncio.get_running_loop()
        delay = self.last_push + self.interval - loop.time()
        if delay <= 0:
            await self._flush()
        else:
            self.flush_handle = loop.call_later(delay, lambda: asyncio.ensure_future(self._flush()))

    async def _flush(self) -> None:
        self.flush_handle = None
        self.last_push = asyncio.get_running_loop().time()
        if self.pending_stock:
            stock, self.pending_stock = self.pending_stock, {}
            self.seq += 1
            # ts: when the newest change in this message was committed (epoch seconds).
            await self.send_json({"type": "stock", "stock": stock, "seq": self.seq, "ts": self.pending_ts})
        if self.pending_deals:
            deals, self.pending_deals = self.pending_deals, {}
            for sku, deal in deals.items():
                await self.send_json({"type": "deal", "sku": sku, "deal": deal})

    # -- spine events (the Channels message type is the event type) -----------------------

    async def stock_changed(self, message):
        payload = message["payload"]
        sku, version = payload["sku"], payload.get("version", 0)
        if sku not in self.sku_groups or payload.get("level") != self.pin_levels.get(sku):
            return  # not pinned here, or another location than the one buys take from
        if version <= self.stock_versions.get(sku, -1):
            return  # older than what this socket already holds (versions are per stock row)
        self.stock_versions[sku] = version
        self.pending_stock[sku] = payload["available"]
        self.pending_ts = max(self.pending_ts, message.get("committed_at", 0.0))
        await self._push_or_schedule()

    async def _deal(self, message):
        payload = message["payload"]
        sku, deal_id, version = payload["sku"], payload["deal_id"], payload.get("version", 0)
        if version <= self.deal_versions.get(deal_id, -1):
            return  # versions are per deal: a later deal on the same SKU starts again at 1
        self.deal_versions[deal_id] = version
        self.pending_deals[sku] = payload["deal"]
        await self._push_or_schedule()

    deal_opened = deal_changed = deal_closed = _deal

    async def price_changed(self, message):
        p = message["payload"]
        await self.send_json({"type": "price", "sku": p["sku"], "price": p["price"], "currency": p["currency"]})

    async def pins_changed(self, message):
        pins = message["payload"]["pins"]
        await self._follow_pins(pins)
        await self.send_json({"type": "pin", "pins": pins})

    async def presence_counted(self, message):
        await self.send_json({"type": "presence", "viewers": message["payload"]["viewers"]})

    async def _stream_status(self, message):
        await self.send_json({"type": "stream", "status": message["payload"]["status"]})

    stream_started = stream_ended = _stream_status

    async def order_placed(self, message):
        p = message["payload"]
        for line in p["lines"]:
            await self.send_json(
                {
                    "type": "interaction",
                    "kind": "purchase",
                    "sku": line["sku"],
                    "quantity": line["quantity"],
                    "name": p.get("buyer_name"),
                }
            )


class ViewerConsumer(_StreamSocket):
    """``/ws/streams/{id}/?token=<viewer token>``."""

    async def connect(self):
        self.stream_id = int(self.scope["url_route"]["kwargs"]["stream_id"])
        self.counted = False
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
        try:
            pins = await database_sync_to_async(stream_pinned_skus)(stream_id=self.stream_id)
        except StreamNotFound:
            return await self.refuse(CLOSE_NOT_FOUND)
        # Join first, then read the snapshot: an event that raced the read is newer (a higher
        # version) and still arrives; an older one is dropped by its version.
        await self.join({"pins": pins})
        snapshot = await database_sync_to_async(stream_snapshot)(stream_id=self.stream_id)
        await self._follow_pins(snapshot["pins"])
        await sync_to_async(presence_join)(stream_id=self.stream_id)
        self.counted = True
        viewers = await sync_to_async(presence_count)(stream_id=self.stream_id)
        await self.accept()
        await self.send_json(
            {
                "type": "snapshot",
                "stream": snapshot["stream"],
                "pins": snapshot["pins"],
                "stock": snapshot["stock"],
                "viewers": viewers,
                "seq": self.seq,
            }
        )

    async def disconnect(self, code):
        if getattr(self, "counted", False):
            await sync_to_async(presence_leave)(stream_id=self.stream_id)
        await super().disconnect(code)

    async def receive(self, text_data=None, bytes_data=None):
        now = time.monotonic()
        self.recent.append(now)
        while self.recent and self.recent[0] < now - 10:
            self.recent.popleft()
        if len(self.recent) > settings.STREAM_CLIENT_MESSAGES_PER_10S:
            await self.close(code=CLOSE_FLOOD)
            return
        try:
            message = json.loads(text_data or "")
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("type") == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_json({"type": "error", "code": "unknown_message", "message": 'Send {"type": "ping"}.'})


class ControlRoomConsumer(_StreamSocket):
    """``/ws/streams/{id}/control/``: the stream's creator and staff only."""

    async def connect(self):
        self.stream_id = int(self.scope["url_route"]["kwargs"]["stream_id"])
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await self.refuse(CLOSE_TOKEN)
        try:
            allowed = await database_sync_to_async(self._may_control)(user)
        except StreamNotFound:
            return await self.refuse(CLOSE_NOT_FOUND)
        if not allowed:
            return await self.refuse(CLOSE_ORIGIN)
        await self.join({"pins": await database_sync_to_async(stream_pinned_skus)(stream_id=self.stream_id)})
        snapshot = await database_sync_to_async(self._snapshot)()
        await self._follow_pins(snapshot["pins"])
        await self.accept()
        await self.send_json({"type": "snapshot", **snapshot, "seq": self.seq})

    def base_groups(self) -> list[str]:
        return stream_groups(self.stream_id) + control_groups(self.stream_id)

    def _may_control(self, user) -> bool:
        stream = stream_get(stream_id=self.stream_id)
        return is_staff(user) or (user.is_creator and stream.shop.owner_id == user.pk)

    def _snapshot(self) -> dict:
        snapshot = stream_snapshot(stream_id=self.stream_id)
        stream = stream_get(stream_id=self.stream_id)
        return {**snapshot, "sales": stream_sales(stream=stream), "viewers": presence_count(stream_id=self.stream_id)}

    async def order_placed(self, message):
        await super().order_placed(message)
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
