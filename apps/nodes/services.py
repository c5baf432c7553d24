"""Writes of the sync plane (docs/edge.md).

Cloud: ``node_register`` (an edge and its key), ``batch_ingest`` (a signed batch, each
event applied once). Edge: ``outbox_stamp`` (the node's contiguous sequence) and the relay's
bookkeeping (``relay_acked``, ``relay_failed``); the relay itself is in ``relay.py``.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
import zlib
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.accounts.models import Shop, User
from apps.catalog.models import SKU, Location, StockLevel
from apps.catalog.services import stock_adjust
from apps.orders.models import Order, OrderLine
from creatorcommerce.signing.selectors import jws_open
from creatorcommerce.signing.services import signing_key_register
from creatorcommerce.spine.events import emit
from creatorcommerce.spine.models import OutboxEvent

from .exceptions import SyncBatchInvalid, SyncSeqConflict, SyncUnauthorized
from .models import Node, NodeDay, NodeEvent, NodeOrder, NodeStock, RelayState
from .selectors import contiguous_end

log = logging.getLogger(__name__)

#: The ``typ`` of a sync batch's JWS header (docs/edge.md).
BATCH_TYP = "sync-batch+jws"
#: The ``typ`` of the token an edge signs to authenticate a request (docs/edge.md).
REQUEST_TYP = "sync-request+jws"

# Advisory lock keys (PostgreSQL): one stamper at a time, one relay run at a time.
STAMP_LOCK = zlib.crc32(b"creatorcommerce.nodes.stamp")
RELAY_LOCK = zlib.crc32(b"creatorcommerce.nodes.relay")


# -- cloud: registration ---------------------------------------------------------------------


def node_register(
    *, node_id: str, public_jwk: dict, shop_slug: str | None = None, venue_name: str | None = None
) -> tuple[Node, bool]:
    """Register the edge ``node_id`` with its public node key (what ``manage.py node_key``
    prints on the edge). Idempotent; a new key for a known node becomes its current key
    (the old one stays published). With ``shop_slug`` and ``venue_name``, ties the node to
    the shop it sells and the venue location whose stock it will own (docs/edge.md,
    "Catalog to the edge"); a node that has taken its venue over keeps it. Returns
    ``(node, key_created)``. Raises ValueError for a bad id, key, shop or venue."""
    if not node_id or len(node_id) > 64 or not all(c.isalnum() or c in "-_." for c in node_id):
        raise ValueError("a node id is 1-64 letters, digits, '-', '_' or '.'")
    with transaction.atomic():
        node, _ = Node.objects.get_or_create(node_id=node_id)
        key, created = signing_key_register(node=node_id, public_jwk=public_jwk)
        if created:
            emit("node.registered", {"node": node_id, "kid": key.kid})
        if shop_slug or venue_name:
            node_assign(node=node, shop_slug=shop_slug, venue_name=venue_name)
    return node, created


def node_assign(*, node: Node, shop_slug: str | None, venue_name: str | None) -> Node:
    """Tie ``node`` to the shop it sells (slug) and its venue location (name, kind venue).
    Idempotent. Raises ValueError for an unknown shop or venue, a venue another node has,
    or a change of shop or venue after the node took its venue over."""
    if not shop_slug or not venue_name:
        raise ValueError("give both the shop (slug) and the venue (location name)")
    shop = Shop.objects.filter(slug=shop_slug).first()
    if shop is None:
        raise ValueError(f"no shop {shop_slug!r}")
    venue = Location.objects.filter(shop=shop, name=venue_name).first()
    if venue is None or venue.kind != Location.Kind.VENUE:
        raise ValueError(f"no venue location {venue_name!r} in shop {shop_slug!r}")
    with transaction.atomic():
        node = Node.objects.select_for_update().get(pk=node.pk)
        if (node.shop_id, node.venue_id) == (shop.pk, venue.pk):
            return node
        if node.venue_taken_at is not None:
            raise ValueError(f"node {node.node_id} owns the stock of {node.venue} already; register a new node")
        if venue.owner_node or Node.objects.filter(venue=venue).exclude(pk=node.pk).exists():
            raise ValueError(f"venue {venue_name!r} belongs to another node")
        node.shop, node.venue = shop, venue
        node.save(update_fields=["shop", "venue"])
    return node


def node_set_active(*, node_id: str, active: bool) -> bool:
    """Accept (``active``) or refuse (401 ``unknown_node``) a registered node's batches from
    now on; its keys stay published, its receipts keep verifying. Returns whether it changed."""
    return bool(Node.objects.filter(node_id=node_id).exclude(is_active=active).update(is_active=active))


# -- cloud: ingest ---------------------------------------------------------------------------


def node_token_open(token: str, *, typ: str) -> tuple[Node, bytes]:
    """Verify a JWS compact token of type ``typ`` signed by a key of a registered, active
    node: the one verification of everything an edge signs for the cloud (its batches, its
    catalog requests; docs/edge.md). Returns the node and the payload bytes; raises
    SyncUnauthorized (401: ``unknown_node`` or ``invalid_signature``) or SyncBatchInvalid
    (400: not a JWS)."""
    from creatorcommerce.signing.exceptions import InvalidReceipt

    try:
        _header, body, key_node = jws_open(token=token, typ=typ, registered=True, error=InvalidReceipt)
    except InvalidReceipt as exc:
        reason = exc.details.get("reason")
        if reason == "malformed":
            raise SyncBatchInvalid("The body is not a JWS compact token.", reason=reason) from exc
        if reason == "unknown_kid":
            raise SyncUnauthorized("No registered node has this key.", code="unknown_node") from exc
        raise SyncUnauthorized("The signature does not verify.", reason=reason) from exc
    node = Node.objects.filter(node_id=key_node).first()
    if node is None or key_node == settings.NODE_ID:
        raise SyncUnauthorized("No registered node has this key.", code="unknown_node")
    if not node.is_active:
        raise SyncUnauthorized("This node is deactivated.", code="unknown_node")
    return node, body


def batch_open(token: str) -> tuple[Node, dict]:
    """Verify a batch: a JWS signed by a key of a registered, active node whose body names
    that node. Returns the node and the body; raises SyncUnauthorized (401) or
    SyncBatchInvalid (400) and records nothing."""
    node, body = node_token_open(token, typ=BATCH_TYP)
    try:
        batch = json.loads(body)
    except ValueError as exc:
        raise SyncBatchInvalid("The batch is not JSON.") from exc
    if not isinstance(batch, dict) or batch.get("node") != node.node_id:
        raise SyncUnauthorized("The batch names another node than its key's.", code="invalid_signature")
    return node, _checked(batch)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked(batch: dict) -> dict:
    if set(batch) != {"node", "from_seq", "to_seq", "events", "totals"}:
        raise SyncBatchInvalid("A batch holds exactly node, from_seq, to_seq, events and totals.")
    first, last, events = batch["from_seq"], batch["to_seq"], batch["events"]
    if not (_is_int(first) and _is_int(last) and 1 <= first <= last):
        raise SyncBatchInvalid("from_seq and to_seq are sequence numbers, from_seq <= to_seq.")
    if not isinstance(events, list) or not 1 <= len(events) <= settings.SYNC_MAX_EVENTS:
        raise SyncBatchInvalid(f"A batch carries 1 to {settings.SYNC_MAX_EVENTS} events.")
    previous = first - 1
    for event in events:
        if not isinstance(event, dict) or set(event) != {"seq", "id", "type", "payload", "created_at", "refs"}:
            raise SyncBatchInvalid("An event holds exactly seq, id, type, payload, created_at and refs.")
        if not _is_int(event["seq"]) or not previous < event["seq"] <= last:
            raise SyncBatchInvalid("Events come in increasing seq, within from_seq..to_seq.")
        previous = event["seq"]
        try:
            event["uuid"] = uuid.UUID(event["id"])
        except (ValueError, TypeError, AttributeError) as exc:
            raise SyncBatchInvalid("An event id is a UUID.") from exc
        created = parse_datetime(event["created_at"]) if isinstance(event["created_at"], str) else None
        if created is None or created.tzinfo is None:
            raise SyncBatchInvalid("An event's created_at is an ISO 8601 time with its offset.")
        event["created"] = created
        if not isinstance(event["type"], str) or not 3 <= len(event["type"]) <= 100:
            raise SyncBatchInvalid("An event type is a string.")
        if not isinstance(event["payload"], dict) or not isinstance(event["refs"], dict):
            raise SyncBatchInvalid("An event's payload and refs are objects.")
    if len({event["uuid"] for event in events}) != len(events):
        raise SyncBatchInvalid("An event id appears twice in the batch.")
    if events[-1]["seq"] != last or events[0]["seq"] != first:
        raise SyncBatchInvalid("from_seq and to_seq are the first and last events' seq.")
    if not isinstance(batch["totals"], dict):
        raise SyncBatchInvalid("totals is an object by currency.")
    totals = dict(batch["totals"])
    batch["days"] = _checked_days(totals.pop("days", None))
    batch["head"] = _checked_head(totals.pop("head", None), last)
    batch["currencies"] = totals
    return batch


def _checked_totals(value) -> bool:
    """``{currency: {"orders", "units", "amount"}}`` (counts >= 0, a decimal string)."""
    if not isinstance(value, dict) or len(value) > 50:
        return False
    for currency, entry in value.items():
        if not (isinstance(currency, str) and len(currency) == 3 and isinstance(entry, dict)):
            return False
        if set(entry) != {"orders", "units", "amount"} or not isinstance(entry["amount"], str):
            return False
        if not all(_is_int(entry[k]) and entry[k] >= 0 for k in ("orders", "units")):
            return False
        try:
            Decimal(entry["amount"])
        except InvalidOperation:
            return False
    return True


def _checked_days(days) -> dict[date, dict]:
    """``totals.days`` (optional; batches before it stay valid): ``{"YYYY-MM-DD": totals}``."""
    if days is None:
        return {}
    if not isinstance(days, dict) or len(days) > settings.SYNC_MAX_EVENTS:
        raise SyncBatchInvalid(f"totals.days is an object of at most {settings.SYNC_MAX_EVENTS} dates.")
    out = {}
    for key, value in days.items():
        try:
            day = date.fromisoformat(key) if isinstance(key, str) and len(key) == 10 else None
        except ValueError:
            day = None
        if day is None or not _checked_totals(value):
            raise SyncBatchInvalid("totals.days maps YYYY-MM-DD to {currency: {orders, units, amount}}.")
        out[day] = value
    return out


def _checked_head(head, to_seq: int) -> dict | None:
    """``totals.head`` (optional): ``{"seq" >= to_seq, "at": ISO time or null}``."""
    if head is None:
        return None
    at = head.get("at") if isinstance(head, dict) else None
    when = parse_datetime(at) if isinstance(at, str) else None
    if (
        not isinstance(head, dict)
        or set(head) != {"seq", "at"}
        or not _is_int(head["seq"])
        or head["seq"] < to_seq
        or (at is not None and (when is None or when.tzinfo is None))
    ):
        raise SyncBatchInvalid("totals.head is {seq (>= to_seq), at (ISO time or null)}.")
    return {"seq": head["seq"], "at": when}


def batch_ingest(*, token: str) -> dict:
    """Record a signed batch from an edge (docs/edge.md, "Ingest"): each event once per
    (node, event id), applied in the order given, then answer ``{"acked_seq", "max_seq",
    "recorded", "duplicates"}``. A batch delivered again (or concurrently) records nothing
    the second time: the node's row is locked for the batch, and the unique (node, uuid) and
    (node, seq) constraints are the arbiters behind that lock."""
    node, batch = batch_open(token)
    now = timezone.now()
    with transaction.atomic():
        node = Node.objects.select_for_update().get(pk=node.pk)
        events = batch["events"]
        uuids = [e["uuid"] for e in events]
        held = dict(NodeEvent.objects.filter(node=node, uuid__in=uuids).values_list("uuid", "seq"))
        taken = set(
            NodeEvent.objects.filter(node=node, seq__in=[e["seq"] for e in events]).values_list("seq", flat=True)
        )
        fresh = [e for e in events if e["uuid"] not in held]
        for event in fresh:
            if event["seq"] in taken:
                raise SyncSeqConflict(seq=event["seq"])
        rows = []
        lookups = _Lookups(node, fresh)
        for event in fresh:
            outcome, detail = _apply(node, event, lookups)
            rows.append(
                NodeEvent(
                    node=node,
                    uuid=event["uuid"],
                    seq=event["seq"],
                    type=event["type"],
                    payload=event["payload"],
                    refs=event["refs"],
                    created_at=event["created"],
                    received_at=now,
                    outcome=outcome,
                    detail=detail[:200],
                )
            )
        NodeEvent.objects.bulk_create(rows)
        node.last_sync_at = now
        if rows:
            node.events_held += len(rows)
            node.max_seq = max(node.max_seq, *(row.seq for row in rows))
            node.acked_seq = contiguous_end(node, node.acked_seq)
        if batch["to_seq"] >= node.totals_seq:
            node.totals, node.totals_seq, node.totals_at = batch["currencies"], batch["to_seq"], now
        head = batch["head"]
        if head is not None and head["seq"] >= node.head_seq:  # the edge's sequence only grows
            node.head_seq, node.head_at = head["seq"], head["at"]
        _days_record(node, batch["days"], batch["to_seq"], now)
        node.save(
            update_fields=[
                "last_sync_at",
                "events_held",
                "max_seq",
                "acked_seq",
                "totals",
                "totals_seq",
                "totals_at",
                "head_seq",
                "head_at",
            ]
        )
        if rows:
            emit(
                "node.synced",
                {"node": node.node_id, "acked_seq": node.acked_seq, "max_seq": node.max_seq, "events": len(rows)},
            )
    return {
        "acked_seq": node.acked_seq,
        "max_seq": node.max_seq,
        "recorded": len(rows),
        "duplicates": len(events) - len(rows),
    }


def _days_record(node: Node, days: dict[date, dict], seq: int, now) -> None:
    """Keep the edge's per-day totals (docs/edge.md, "Reconciliation"): each day as the
    newest batch (by ``to_seq``) reporting it gave it; an older batch changes nothing."""
    if not days:
        return
    held = {row.date: row for row in NodeDay.objects.filter(node=node, date__in=list(days))}
    fresh, changed = [], []
    for day, totals in days.items():
        row = held.get(day)
        if row is None:
            fresh.append(NodeDay(node=node, date=day, totals=totals, seq=seq, reported_at=now))
        elif seq >= row.seq:
            row.totals, row.seq, row.reported_at = totals, seq, now
            changed.append(row)
    NodeDay.objects.bulk_create(fresh)
    NodeDay.objects.bulk_update(changed, ["totals", "seq", "reported_at"])


def _is_order(event: dict) -> bool:
    return event["type"].startswith("order.") and "order" in event["refs"]


def _is_stock(event: dict) -> bool:
    return event["type"] == "stock.changed" and "stock" in event["refs"]


def _stock_key(ref) -> tuple[str, str, str]:
    return str(ref["shop"]), str(ref["sku"]), str(ref["location"])


class _Lookups:
    """What one batch's events look up, each once per batch: the node's order and stock
    mirrors (two queries for the whole batch), shops, buyers, SKUs, locations and stock rows
    (once each on first use). A batch of 200 events names few of each, so mirroring an
    order costs its writes and little else (docs/edge.md, "Figures"). Rows written inside
    an order's savepoint are remembered only once it was released; an order that rolled
    back clears the cache (``forget``)."""

    def __init__(self, node: Node, events: list[dict]):
        self.node = node
        ids, keys = set(), set()
        for event in events:
            try:
                if _is_order(event):
                    ids.add(int(event["refs"]["order"]["id"]))
                elif _is_stock(event):
                    keys.add(_stock_key(event["refs"]["stock"]))
            except (KeyError, TypeError, ValueError):
                continue  # the event's own apply reports it
        self.orders = {m.edge_order: m for m in NodeOrder.objects.filter(node=node, edge_order__in=ids)} if ids else {}
        self.stocks = {}
        if keys:
            shops, skus, locations = ({key[i] for key in keys} for i in range(3))
            mirrors = NodeStock.objects.filter(node=node, shop__in=shops, sku__in=skus, location__in=locations)
            self.stocks = {(m.shop, m.sku, m.location): m for m in mirrors}
        self._rows: dict[tuple, object] = {}

    def forget(self) -> None:
        self._rows.clear()

    def _once(self, key: tuple, find):
        if key not in self._rows:
            self._rows[key] = find()
        return self._rows[key]

    def shop(self, slug) -> Shop | None:
        return self._once(("shop", slug), lambda: Shop.objects.filter(slug=slug).first())

    def buyer(self, email) -> User:
        return self._once(("buyer", str(email).lower()), lambda: _buyer(email))

    def sku(self, shop: Shop, code) -> SKU | None:
        return self._once(("sku", shop.pk, code), lambda: SKU.objects.filter(shop=shop, code=code).first())

    def location(self, shop: Shop, name) -> Location:
        return self._once(("location", shop.pk, name), lambda: _location(shop, name))

    def level(self, sku: SKU, location: Location) -> StockLevel:
        return self._once(
            ("level", sku.pk, location.pk), lambda: StockLevel.objects.get_or_create(sku=sku, location=location)[0]
        )

    def stock_level(self, key: tuple[str, str, str]) -> StockLevel | None:
        shop, sku, location = key
        return self._once(
            ("stock_level", *key),
            lambda: (
                StockLevel.objects.filter(sku__shop__slug=shop, sku__code=sku, location__name=location)
                .select_related("sku", "location")
                .first()
            ),
        )


def _apply(node: Node, event: dict, lookups: _Lookups) -> tuple[str, str]:
    """Apply one new event to the cloud's mirrors; returns (outcome, detail)."""
    if _is_order(event):
        return _order_apply(node, event["seq"], event["refs"]["order"], lookups)
    if _is_stock(event):
        return _stock_apply(node, event["seq"], event["payload"], event["refs"]["stock"], lookups)
    return NodeEvent.Outcome.STORED, ""


def _decimal(value) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise _Unresolved(f"not an amount: {value!r}") from exc


def _when(value) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


class _Unresolved(Exception):
    pass


def _order_apply(node: Node, seq: int, doc: dict, lookups: _Lookups) -> tuple[str, str]:
    """Mirror an edge order as a cloud order, from its document at relay time, if that
    document is newer (by seq) than the one applied last. An order never paid on the edge
    (a declined or expired reservation) is not mirrored."""
    try:
        edge_id = int(doc["id"])
        existing = lookups.orders.get(edge_id)
        if existing is not None and existing.doc_seq >= seq:
            return NodeEvent.Outcome.STALE, ""
        if existing is None and not doc.get("paid_at"):
            return NodeEvent.Outcome.STORED, "never paid on the edge"
        with transaction.atomic():  # a savepoint: an unresolvable document leaves nothing
            if existing is None:
                mirror = _order_create(node, seq, edge_id, doc, lookups)
            else:
                mirror = _order_update(existing, seq, doc)
        lookups.orders[edge_id] = mirror
    except _Unresolved as exc:
        lookups.forget()  # rows found or made in the rolled-back savepoint are not to be reused
        return NodeEvent.Outcome.UNRESOLVED, str(exc)
    except (KeyError, TypeError, ValueError, DatabaseError) as exc:
        # A document this database refuses (a negative total...): its savepoint rolled back.
        lookups.forget()
        return NodeEvent.Outcome.UNRESOLVED, f"malformed order document: {exc!r}"
    return NodeEvent.Outcome.APPLIED, ""


_STATE_FIELDS = (
    "status",
    "payment_status",
    "payment_reference",
    "capture_reference",
    "refund_reference",
    "receipt",
)


def _order_state(doc: dict) -> dict:
    state = {name: str(doc.get(name) or "") for name in _STATE_FIELDS}
    if state["status"] not in Order.Status.values or state["payment_status"] not in Order.PaymentStatus.values:
        raise _Unresolved(f"unknown status {state['status']!r}/{state['payment_status']!r}")
    state["paid_at"] = _when(doc.get("paid_at"))
    state["refunded_at"] = _when(doc.get("refunded_at"))
    return state


def _order_create(node: Node, seq: int, edge_id: int, doc: dict, lookups: _Lookups) -> NodeOrder:
    shop = lookups.shop(doc["shop"])
    if shop is None:
        raise _Unresolved(f"no shop {doc['shop']!r}")
    buyer = lookups.buyer(doc["buyer"])
    pickup = None
    if doc.get("fulfilment") == Order.Fulfilment.PICKUP:
        pickup = lookups.location(shop, doc.get("pickup_location"))
    shipping = doc.get("shipping") or {}
    order = Order.objects.create(
        buyer=buyer,
        shop=shop,
        total=_decimal(doc["total"]),
        currency=str(doc["currency"])[:3],
        idempotency_key=f"edge:{node.node_id}:{edge_id}",
        request_fingerprint="",
        fulfilment=Order.Fulfilment.PICKUP if pickup else Order.Fulfilment.DELIVERY,
        pickup_location=pickup,
        shipping_fee=_decimal(doc.get("shipping_fee") or "0"),
        shipping_adjustments=doc.get("shipping_adjustments") or [],
        **{f"shipping_{name}": str(shipping.get(name) or "")[:200] for name in Order.SHIPPING_FIELDS},
        **_order_state(doc),
    )
    created_at = _when(doc.get("created_at"))
    if created_at:  # auto_now_add set the cloud's clock: keep the edge's
        Order.objects.filter(pk=order.pk).update(created_at=created_at)
    lines = []
    for line in doc["lines"]:
        sku = lookups.sku(shop, line["sku"])
        if sku is None:
            raise _Unresolved(f"no SKU {line['sku']!r} in shop {shop.slug!r}")
        location = lookups.location(shop, line.get("location"))
        level = lookups.level(sku, location)
        lines.append(
            OrderLine(
                order=order,
                sku=sku,
                stock_level=level,
                sku_code=sku.code,
                title=str(line.get("title") or "")[:200],
                quantity=int(line["quantity"]),
                unit_price=_decimal(line["unit_price"]),
                adjustments=line.get("adjustments") or [],
                total=_decimal(line["total"]),
            )
        )
    if not lines:
        raise _Unresolved("an order without lines")
    OrderLine.objects.bulk_create(lines)
    return NodeOrder.objects.create(node=node, edge_order=edge_id, order=order, doc_seq=seq)


def _order_update(mirror: NodeOrder, seq: int, doc: dict) -> NodeOrder:
    state = _order_state(doc)
    Order.objects.filter(pk=mirror.order_id).update(**state)
    NodeOrder.objects.filter(pk=mirror.pk).update(doc_seq=seq, updated_at=timezone.now())
    mirror.doc_seq = seq
    return mirror


def _buyer(email) -> User:
    if not isinstance(email, str) or "@" not in email:
        raise _Unresolved("no buyer e-mail")
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        # A buyer who signed up at the venue: known here by e-mail, with no password until
        # they reset it (docs/edge.md, "Names, not ids").
        user = User.objects.create_user(email=email, password=None)
    return user


def _location(shop: Shop, name) -> Location:
    location = Location.objects.filter(shop=shop, name=name).first() if name else None
    if location is None:
        raise _Unresolved(f"no location {name!r} in shop {shop.slug!r}")
    return location


def _stock_apply(node: Node, seq: int, payload: dict, ref: dict, lookups: _Lookups) -> tuple[str, str]:
    """Mirror an edge stock row (read-only here). A venue location's units belong to the
    edge: the cloud's own row there is held at 0 so that no cloud buy takes them."""
    try:
        key = {"shop": str(ref["shop"]), "sku": str(ref["sku"]), "location": str(ref["location"])}
        available, version = int(payload["available"]), int(payload["version"])
    except (KeyError, TypeError, ValueError) as exc:
        return NodeEvent.Outcome.UNRESOLVED, f"malformed stock event: {exc!r}"
    names = (key["shop"], key["sku"], key["location"])
    mirror = lookups.stocks.get(names)
    if mirror is not None and mirror.seq >= seq:
        return NodeEvent.Outcome.STALE, ""
    level = lookups.stock_level(names)
    venue = level is not None and level.location.kind == Location.Kind.VENUE
    if venue and level.available != 0 and level.location.owner_node in ("", node.node_id):
        stock_adjust(sku=level.sku, location=level.location, set_to=0, as_node=node.node_id)
        level.available = 0
    now = timezone.now()
    if mirror is None:
        lookups.stocks[names] = NodeStock.objects.create(
            node=node, available=available, version=version, seq=seq, stock_level=level, updated_at=now, **key
        )
    else:
        NodeStock.objects.filter(pk=mirror.pk).update(
            available=available, version=version, seq=seq, stock_level=level, updated_at=now
        )
        mirror.seq = seq
    return NodeEvent.Outcome.APPLIED, "" if level is not None else "no such stock row here"


# -- edge: sequence and relay bookkeeping ----------------------------------------------------


def outbox_stamp(*, limit: int = 2000) -> int:
    """Give up to ``limit`` committed, unstamped outbox events the node's next sequence
    numbers, in id order, in one short transaction under a lock (docs/edge.md,
    "Sequence"). An event whose transaction commits late gets a later number than events
    stamped before it: the sequence is contiguous and complete, never skipping one. Returns
    how many were stamped."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [STAMP_LOCK])
        rows = list(OutboxEvent.objects.filter(seq__isnull=True).order_by("id").only("id")[:limit])
        if not rows:
            return 0
        last = OutboxEvent.objects.filter(seq__isnull=False).order_by("-seq").values_list("seq", flat=True).first()
        for n, row in enumerate(rows, start=(last or 0) + 1):
            row.seq = n
        OutboxEvent.objects.bulk_update(rows, ["seq"], batch_size=1000)
    return len(rows)


def relay_state(node: str | None = None) -> RelayState:
    """This node's relay state row, created on first use."""
    state, _ = RelayState.objects.get_or_create(node=node or settings.NODE_ID)
    return state


def relay_acked(*, state: RelayState, acked_seq: int, events: int) -> None:
    """The cloud answered: resume after ``acked_seq`` (what it holds contiguously, even if
    lower than what was sent) and forget any backoff."""
    now = timezone.now()
    RelayState.objects.filter(pk=state.pk).update(
        acked_seq=acked_seq,
        failures=0,
        next_attempt_at=None,
        last_attempt_at=now,
        last_success_at=now,
        last_error="",
        batches_sent=F("batches_sent") + 1,
        events_sent=F("events_sent") + events,
    )
    state.acked_seq, state.failures, state.next_attempt_at = acked_seq, 0, None


def backoff_delay(failures: int) -> float:
    """Seconds to wait after ``failures`` failed attempts in a row: doubling from
    SYNC_BACKOFF_MIN_SECONDS up to SYNC_BACKOFF_MAX_SECONDS, with a little jitter (the relay
    and the catalog pull)."""
    delay = min(settings.SYNC_BACKOFF_MAX_SECONDS, settings.SYNC_BACKOFF_MIN_SECONDS * 2 ** min(failures - 1, 20))
    return delay * random.uniform(0.8, 1.0)  # jitter, not a secret


def relay_failed(*, state: RelayState, error: str) -> float:
    """The batch did not get through: wait before the next attempt, doubling from
    SYNC_BACKOFF_MIN_SECONDS up to SYNC_BACKOFF_MAX_SECONDS (with a little jitter).
    Returns the wait in seconds."""
    failures = state.failures + 1
    delay = backoff_delay(failures)
    now = timezone.now()
    RelayState.objects.filter(pk=state.pk).update(
        failures=failures,
        next_attempt_at=now + timedelta(seconds=delay),
        last_attempt_at=now,
        last_error=error[:300],
    )
    state.failures, state.next_attempt_at = failures, now + timedelta(seconds=delay)
    return delay
