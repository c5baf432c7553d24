"""What a stream's sockets are told: spine events turned into the public protocol's messages
(docs/streams.md, "The WebSocket protocol"), in one place for viewers and the control room.

A ``StreamFeed`` holds one stream's view of the world as far as its sockets know it: the
pinned SKUs (their ``sku.<id>`` groups and the stock row viewers see, the default
location's), the newest stock count per SKU and state per deal with their versions, a
``seq`` and the counters not pushed yet. It

- filters: stock changes of SKUs that are not pinned, or of another location than the
  pinned one, are ignored; a count or deal state not newer (by its per-row ``version``) than
  the one held is dropped, so an older value never overwrites a newer one;
- coalesces ``stock`` and ``deal`` pushes to at most ``STREAM_PUSHES_PER_SECOND``: the first
  goes at once, later ones are held and merged, the last always goes (``seq`` rises by one
  per ``stock`` message);
- turns every other event (pins, price, presence, stream status, purchases, badges) into its
  message at once, in arrival order.

It never sends anything itself: ``publish(messages)`` does (the per-process
``StreamBroadcaster`` encodes each message once and writes it to all of the process's viewer
sockets; a control-room socket sends to itself), and ``regroup(join, leave)`` follows pin
changes in the channel layer. Everything that publishes or changes groups holds ``lock``, so
messages leave in order and a new socket's snapshot can be taken between two of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from django.conf import settings

from .extras import viewer_relay_for

log = logging.getLogger(__name__)

# Relayed messages remembered for ``patched`` (only those newer than a snapshot being read
# matter: a handful at most).
RELAYED_KEPT = 16

Publish = Callable[[list[dict]], Awaitable[None]]
Regroup = Callable[[list[str], list[str]], Awaitable[None]]


class StreamFeed:
    def __init__(self, stream_id: int, *, publish: Publish, regroup: Regroup):
        self.stream_id = stream_id
        self._publish = publish
        self._regroup = regroup
        self.lock = asyncio.Lock()
        # Pins: code -> "sku.<id>" group, and code -> the stock row (level) viewers see.
        self.sku_groups: dict[str, str] = {}
        self.pin_levels: dict[str, int | None] = {}
        # The newest state known, with versions (per stock row; per deal).
        self.stock_versions: dict[str, int] = {}
        self.stock_values: dict[str, int] = {}
        self.deal_versions: dict[int, int] = {}
        self.deal_states: dict[int, tuple[str, dict | None]] = {}  # deal id -> (sku, body or None)
        # Unversioned state, stamped with ``changes`` when it arrived (see ``adopt``).
        self.changes = 0
        self.pins: list[dict] | None = None
        self.pins_at = 0
        self.prices: dict[str, tuple[int, str, str | None]] = {}
        self.status: tuple[int, str] | None = None
        # Stock rows of pinned SKUs at the shop's venues (docs/geofences.md): which
        # venue and SKU a row is (learnt from snapshots), and the newest count of every other
        # row of a pinned SKU seen here (row -> (version, available)).
        self.venue_levels: dict[int, tuple[int, str, str]] = {}  # level -> (venue, venue name, sku)
        self.level_values: dict[int, tuple[int, int]] = {}
        self.pending_venues: dict[int, dict[str, int]] = {}
        # Smart bundles anchored on pinned SKUs, by arrival: id -> (changes, card or None).
        self.bundles: dict[int, tuple[int, dict | None]] = {}
        # Messages of apps above streams (apps/streams/extras.py), by arrival: (changes, message).
        self.relayed: list[tuple[int, dict]] = []
        # Counters waiting for their push.
        self.pending_stock: dict[str, int] = {}
        self.pending_ts = 0.0
        self.pending_deals: dict[str, dict | None] = {}
        self.seq = 0
        self.last_push = 0.0
        self.interval = 1.0 / max(settings.STREAM_PUSHES_PER_SECOND, 1)
        self._flush_due = False
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task | None = None

    # -- pins and snapshots -----------------------------------------------------------------

    def follow(self, pins: list[dict]) -> tuple[list[str], list[str]]:
        """Make ``pins`` the pinned set; returns the groups to join and those to leave."""
        wanted = {p["sku"]: f"sku.{p['sku_id']}" for p in pins}
        leave = [group for code, group in self.sku_groups.items() if wanted.get(code) != group]
        join = [group for code, group in wanted.items() if self.sku_groups.get(code) != group]
        self.sku_groups = wanted
        for pin in pins:
            if "level" in pin:
                self.pin_levels[pin["sku"]] = pin["level"]
        for code in list(self.pin_levels):
            if code not in wanted:
                del self.pin_levels[code]
        return join, leave

    async def follow_groups(self, pins: list[dict]) -> None:
        join, leave = self.follow(pins)
        if join or leave:
            await self._regroup(join, leave)

    def observe(self, pins: list[dict], *, notify: bool) -> list[dict]:
        """Merge ``pins`` (read from the database, or a ``pins.changed`` payload) with the
        newest state known here: returns copies holding, per SKU, whichever count and deal
        state is newer by version. What ``pins`` hold that is newer than what is known here
        becomes known (so the events carrying it are dropped when they arrive late) and, with
        ``notify``, pending: sockets already served must get it too, the event won't bring it."""
        merged = []
        for pin in pins:
            pin = dict(pin)
            code = pin["sku"]
            if "available" in pin and self.pin_levels.get(code, pin.get("level")) == pin.get("level"):
                version, known = pin.get("version", 0), self.stock_versions.get(code, -1)
                if known > version:
                    pin["available"], pin["version"] = self.stock_values[code], known
                elif version > known:
                    self.stock_versions[code], self.stock_values[code] = version, pin["available"]
                    if notify and known >= 0:
                        self.pending_stock[code] = pin["available"]
                        self._schedule(inline=False)
            pin["deal"] = self._merge_deal(code, pin.get("deal"), notify=notify)
            merged.append(pin)
        return merged

    def _merge_deal(self, code: str, deal: dict | None, *, notify: bool) -> dict | None:
        if deal is not None:
            deal_id, version = deal["id"], deal.get("version", 0)
            known = self.deal_versions.get(deal_id, -1)
            if known > version:
                return self.deal_states[deal_id][1]
            if version > known:
                self.deal_versions[deal_id], self.deal_states[deal_id] = version, (code, deal)
                if notify and known >= 0:
                    self.pending_deals[code] = deal
                    self._schedule(inline=False)
            return deal
        # No open deal in what was read: one opened since (and known here) is newer. (One
        # closed before the read whose closing has not arrived yet will be closed by it.)
        open_here = [i for i, (sku, body) in self.deal_states.items() if sku == code and body is not None]
        return self.deal_states[max(open_here)][1] if open_here else None

    async def adopt(self, snapshot: dict, *, since: int) -> dict:
        """A new socket's snapshot (``stream_snapshot``: stream, pins, stock), read after the
        socket's groups were joined and after ``since = feed.changes`` was noted, merged with
        everything newer that arrived here meanwhile: counts and deals by version; pins,
        prices and stream status by arrival (an event handled since ``since`` is at least as
        new as the read). Follows the snapshot's pins when no pin change arrived meanwhile.

        Precondition: the caller holds ``lock`` and, before releasing it, starts sending to
        the socket (seq and values then only move forward from what this returns)."""
        assert self.lock.locked()
        if self.pins is not None and self.pins_at > since:
            pins = self.pins
        else:
            pins = snapshot["pins"]
            await self.follow_groups(pins)
        pins = self.observe(pins, notify=True)
        for pin in pins:
            price = self.prices.get(pin["sku"])
            if price is not None and price[0] > since:
                pin["price"] = price[1]
                if price[2]:
                    pin["currency"] = price[2]
        stream = {**snapshot["stream"], "pins": pins}
        if self.status is not None and self.status[0] > since:
            stream["status"] = self.status[1]
        return {
            "stream": stream,
            "pins": pins,
            "stock": {p["sku"]: p["available"] for p in pins},
            "venues": self._adopt_venues(snapshot.get("venue_stock", [])),
            "bundles": self._adopt_bundles(snapshot.get("bundles", []), since=since),
        }

    def _adopt_venues(self, rows: list[dict]) -> dict[str, dict]:
        """The snapshot's venue rows, each merged by version with what arrived here, as
        ``{venue id: {"name", "stock": {sku: available}}}``."""
        venues: dict[str, dict] = {}
        for row in rows:
            level, version, available = row["level"], row["version"], row["available"]
            self.venue_levels[level] = (row["venue"], row["venue_name"], row["sku"])
            known = self.level_values.get(level)
            if known is not None and known[0] > version:
                available = known[1]
            else:
                self.level_values[level] = (version, available)
            venue = venues.setdefault(str(row["venue"]), {"name": row["venue_name"], "stock": {}})
            venue["stock"][row["sku"]] = available
        return venues

    def _adopt_bundles(self, cards: list[dict], *, since: int) -> list[dict]:
        """The snapshot's bundles with those changed here since the read applied."""
        by_id = {card["bundle"]: card for card in cards}
        for bundle_id, (at, card) in self.bundles.items():
            if at > since:
                if card is None:
                    by_id.pop(bundle_id, None)
                else:
                    by_id[bundle_id] = card
        return [by_id[k] for k in sorted(by_id)]

    # -- events (the Channels message type is the event type) ---------------------------------

    async def handle(self, message: dict) -> None:
        handler = self._handlers.get(message["type"])
        if handler is not None:
            await handler(self, message)
        elif (relay := viewer_relay_for(message["type"])) is not None:
            await self._relay(relay, message)

    async def _relay(self, relay, message: dict) -> None:
        """An app above streams speaks to the stream's sockets (apps/streams/extras.py)."""
        try:
            out = relay(message)
        except Exception:
            log.exception("stream %s: viewer relay of %s failed", self.stream_id, message["type"])
            return
        if out is None:
            return
        async with self.lock:
            self.changes += 1
            self.relayed = [*self.relayed[-(RELAYED_KEPT - 1) :], (self.changes, out)]
            await self._publish([out])

    def patched(self, fields: dict, *, since: int) -> dict:
        """A new socket's snapshot extras (read after ``since = feed.changes``) with the
        relayed messages that arrived since merged in: ``{"type": k, k: {...}}`` updates the
        extra ``k`` (docs/streams.md, "Snapshot extras and viewer relays")."""
        for at, message in self.relayed:
            key = message.get("type")
            if at > since and isinstance(fields.get(key), dict) and isinstance(message.get(key), dict):
                fields = {**fields, key: {**fields[key], **message[key]}}
        return fields

    async def _stock_changed(self, message: dict) -> None:
        payload = message["payload"]
        code, version = payload["sku"], payload.get("version", 0)
        if code not in self.sku_groups:
            return  # not pinned here
        if payload.get("level") != self.pin_levels.get(code):
            await self._other_level(message)  # another location: a venue's, maybe
            return
        if version <= self.stock_versions.get(code, -1):
            return  # older than what is held (versions are per stock row)
        self.stock_versions[code], self.stock_values[code] = version, payload["available"]
        self.pending_stock[code] = payload["available"]
        self.pending_ts = max(self.pending_ts, message.get("committed_at", 0.0))
        await self._push_or_schedule()

    async def _other_level(self, message: dict) -> None:
        """A pinned SKU's stock row at another location than the default: kept by version,
        and pushed as a venue's ``stock`` message when it is a venue's row."""
        payload = message["payload"]
        level, version = payload.get("level"), payload.get("version", 0)
        known = self.level_values.get(level)
        if known is not None and version <= known[0]:
            return
        self.level_values[level] = (version, payload["available"])
        venue = self.venue_levels.get(level)
        if venue is None:
            return
        self.pending_venues.setdefault(venue[0], {})[payload["sku"]] = payload["available"]
        self.pending_ts = max(self.pending_ts, message.get("committed_at", 0.0))
        await self._push_or_schedule()

    async def _bundle(self, message: dict) -> None:
        """``bundle.*``: the card of a bundle anchored on a pinned SKU, or null when it is
        gone, inactive, or no longer anchored here."""
        p = message["payload"]
        pinned = {int(group.split(".", 1)[1]) for group in self.sku_groups.values()}
        card = None
        if message["type"] != "bundle.deleted" and p["is_active"] and p["anchor_id"] in pinned:
            card = {k: v for k, v in p.items() if k not in ("shop", "anchor_id")}
        self.changes += 1
        self.bundles[p["bundle"]] = (self.changes, card)
        await self.send([{"type": "bundle", "id": p["bundle"], "bundle": card}])

    async def _deal(self, message: dict) -> None:
        payload = message["payload"]
        code, deal_id, version = payload["sku"], payload["deal_id"], payload.get("version", 0)
        if version <= self.deal_versions.get(deal_id, -1):
            return  # versions are per deal: a later deal on the same SKU starts again at 1
        self.deal_versions[deal_id], self.deal_states[deal_id] = version, (code, payload["deal"])
        self.pending_deals[code] = payload["deal"]
        await self._push_or_schedule()

    async def _price_changed(self, message: dict) -> None:
        p = message["payload"]
        self.changes += 1
        self.prices[p["sku"]] = (self.changes, p["price"], p.get("currency"))
        await self.send([{"type": "price", "sku": p["sku"], "price": p["price"], "currency": p["currency"]}])

    async def _pins_changed(self, message: dict) -> None:
        pins = message["payload"]["pins"]
        async with self.lock:
            self.changes += 1
            self.pins, self.pins_at = pins, self.changes
            await self.follow_groups(pins)  # before the message: the new SKUs' changes follow it
            await self._publish([{"type": "pin", "pins": self.observe(pins, notify=False)}])

    async def _presence_counted(self, message: dict) -> None:
        await self.send([{"type": "presence", "viewers": message["payload"]["viewers"]}])

    async def _stream_status(self, message: dict) -> None:
        status = message["payload"]["status"]
        self.changes += 1
        self.status = (self.changes, status)
        await self.send([{"type": "stream", "status": status}])

    async def _stream_deleted(self, message: dict) -> None:
        self.changes += 1
        self.status = (self.changes, "deleted")
        await self.send([{"type": "stream", "status": "deleted"}])

    async def _order_placed(self, message: dict) -> None:
        p = message["payload"]
        await self.send(
            [
                {
                    "type": "interaction",
                    "kind": "purchase",
                    "sku": line["sku"],
                    "quantity": line["quantity"],
                    "name": p.get("buyer_name"),
                }
                for line in p["lines"]
            ]
        )

    async def _badge_awarded(self, message: dict) -> None:
        """A badge granted during this stream (the loyalty app's ``badge.awarded``, sent to
        ``stream.<id>``): its name and icon, and the viewer's chosen display name only."""
        p = message["payload"]
        await self.send(
            [
                {
                    "type": "interaction",
                    "kind": "badge",
                    "badge": {"name": p["name"], "icon": p["icon"]},
                    "name": p.get("display_name"),
                }
            ]
        )

    _handlers = {
        "stock.changed": _stock_changed,
        "deal.opened": _deal,
        "deal.changed": _deal,
        "deal.closed": _deal,
        "price.changed": _price_changed,
        "pins.changed": _pins_changed,
        "presence.counted": _presence_counted,
        "stream.started": _stream_status,
        "stream.ended": _stream_status,
        "stream.cancelled": _stream_status,  # {"type": "stream", "status": "cancelled"}
        "stream.deleted": _stream_deleted,
        "order.placed": _order_placed,
        "badge.awarded": _badge_awarded,
        "bundle.created": _bundle,
        "bundle.updated": _bundle,
        "bundle.deleted": _bundle,
    }

    async def send(self, messages: list[dict]) -> None:
        """Publish right away (after whatever is being published now)."""
        async with self.lock:
            await self._publish(messages)

    # -- coalescing ---------------------------------------------------------------------------

    def _schedule(self, *, inline: bool) -> bool:
        """Note that counters are pending. True: flush now (the last push is at least one
        interval old; the common case once counters are coalesced at the source: no timer,
        no task); else a flush is already due or has been scheduled for later."""
        if self._flush_due:
            return False
        self._flush_due = True
        loop = asyncio.get_running_loop()
        delay = self.last_push + self.interval - loop.time()
        if delay <= 0 and inline:
            return True
        self._flush_handle = loop.call_later(max(delay, 0.0), self._flush_soon)
        return False

    async def _push_or_schedule(self) -> None:
        if self._schedule(inline=True):
            await self._flush()

    def _flush_soon(self) -> None:
        self._flush_handle = None
        self._flush_task = asyncio.ensure_future(self._flush_logged())

    async def _flush_logged(self) -> None:
        try:
            await self._flush()
        except Exception:
            log.exception("stream %s: pushing counters failed", self.stream_id)

    async def _flush(self) -> None:
        async with self.lock:
            self._flush_due = False
            self.last_push = asyncio.get_running_loop().time()
            messages = []
            if self.pending_stock:
                stock, self.pending_stock = self.pending_stock, {}
                self.seq += 1
                # ts: when the newest change in this message was committed (epoch seconds).
                messages.append({"type": "stock", "stock": stock, "seq": self.seq, "ts": self.pending_ts})
            if self.pending_venues:
                venues, self.pending_venues = self.pending_venues, {}
                for venue, stock in sorted(venues.items()):
                    self.seq += 1
                    messages.append(
                        {"type": "stock", "venue": venue, "stock": stock, "seq": self.seq, "ts": self.pending_ts}
                    )
            if self.pending_deals:
                deals, self.pending_deals = self.pending_deals, {}
                messages.extend({"type": "deal", "sku": code, "deal": deal} for code, deal in deals.items())
            if messages:
                await self._publish(messages)

    def close(self) -> None:
        """Stop pending pushes (the sockets are going away)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._flush_task is not None and not self._flush_task.done():
            self._flush_task.cancel()
