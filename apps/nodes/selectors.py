"""Reads of the sync plane (docs/edge.md).

Edge side: the outbox after the acknowledged sequence, with the names the cloud needs
(ids differ between nodes: shops by slug, SKUs by code, locations by name, buyers by
e-mail), and the edge's running totals. Cloud side: per node, the sequences held, the
missing ranges and the cloud's totals of the node's orders - what reconciliation reads.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Exists, Min, OuterRef, Q, Sum
from django.db.models.functions import TruncDate

from apps.catalog.models import StockLevel
from apps.orders.models import Order, OrderLine
from creatorcommerce.spine.models import OutboxEvent

from .models import Node, NodeEvent, NodeOrder, RelayState

# -- edge ----------------------------------------------------------------------------------


def relay_state_of(node: str) -> RelayState | None:
    return RelayState.objects.filter(node=node).first()


def outbox_after(*, seq: int, limit: int) -> list[OutboxEvent]:
    """Stamped events after ``seq``, in sequence order (the relay's next batch)."""
    return list(OutboxEvent.objects.filter(seq__gt=seq).order_by("seq")[:limit])


def outbox_unstamped_count() -> int:
    return OutboxEvent.objects.filter(seq__isnull=True).count()


def outbox_last_seq() -> int:
    return OutboxEvent.objects.filter(seq__isnull=False).order_by("-seq").values_list("seq", flat=True).first() or 0


def order_documents(order_ids) -> dict[int, dict]:
    """The orders as they stand now, named so another node can resolve them: the shop's
    slug, the buyer's e-mail, each line's SKU code and location name."""
    orders = (
        Order.objects.filter(pk__in=set(order_ids))
        .select_related("shop", "buyer", "pickup_location")
        .prefetch_related("lines__stock_level__location")
    )
    return {order.pk: _document(order) for order in orders}


def _document(order: Order) -> dict:
    def when(value):
        return value.isoformat() if value else None

    return {
        "id": order.pk,
        "shop": order.shop.slug,
        "buyer": order.buyer.email,
        "status": order.status,
        "payment_status": order.payment_status,
        "total": format(order.total, "f"),
        "currency": order.currency,
        "created_at": when(order.created_at),
        "paid_at": when(order.paid_at),
        "refunded_at": when(order.refunded_at),
        "fulfilment": order.fulfilment,
        "pickup_location": order.pickup_location.name if order.pickup_location_id else None,
        "shipping_fee": format(order.shipping_fee, "f"),
        "shipping_adjustments": order.shipping_adjustments,
        "shipping": {name: getattr(order, f"shipping_{name}") for name in Order.SHIPPING_FIELDS},
        "payment_reference": order.payment_reference,
        "capture_reference": order.capture_reference,
        "refund_reference": order.refund_reference,
        "receipt": order.receipt,
        "lines": [
            {
                "sku": line.sku_code,
                "title": line.title,
                "quantity": line.quantity,
                "unit_price": format(line.unit_price, "f"),
                "adjustments": line.adjustments,
                "total": format(line.total, "f"),
                "location": line.stock_level.location.name,
            }
            for line in order.lines.all()
        ],
    }


def stock_names(level_ids) -> dict[int, dict]:
    """Stock rows by id, named: ``{"shop", "sku", "location", "kind"}``."""
    rows = StockLevel.objects.filter(pk__in=set(level_ids)).values_list(
        "pk", "sku__shop__slug", "sku__code", "location__name", "location__kind"
    )
    return {pk: {"shop": shop, "sku": sku, "location": name, "kind": kind} for pk, shop, sku, name, kind in rows}


def batch_events(events: list[OutboxEvent]) -> list[dict]:
    """The events as a batch carries them: ``{"seq", "id", "type", "payload", "created_at",
    "refs"}``, where ``refs`` names what the payload's ids point at (``order``: the order's
    document for ``order.*`` events; ``stock``: the stock row for ``stock.changed``)."""
    order_ids = [e.payload["order"] for e in events if e.type.startswith("order.") and "order" in e.payload]
    level_ids = [e.payload["level"] for e in events if e.type == "stock.changed" and "level" in e.payload]
    documents = order_documents(order_ids) if order_ids else {}
    levels = stock_names(level_ids) if level_ids else {}
    out = []
    for event in events:
        refs = {}
        if event.type.startswith("order.") and event.payload.get("order") in documents:
            refs["order"] = documents[event.payload["order"]]
        elif event.type == "stock.changed" and event.payload.get("level") in levels:
            refs["stock"] = levels[event.payload["level"]]
        out.append(
            {
                "seq": event.seq,
                "id": str(event.uuid),
                "type": event.type,
                "payload": event.payload,
                "created_at": event.created_at.isoformat(),
                "refs": refs,
            }
        )
    return out


def _totals(orders) -> dict[str, dict]:
    """``{currency: {"orders", "units", "amount"}}`` of ``orders`` (a queryset of Order)."""
    totals: dict[str, dict] = {}
    for row in orders.values("currency").annotate(n=Count("id"), amount=Sum("total")):
        totals[row["currency"]] = {"orders": row["n"], "units": 0, "amount": format(row["amount"] or Decimal(0), "f")}
    lines = OrderLine.objects.filter(order__in=orders.values("pk"))
    for row in lines.values("order__currency").annotate(units=Sum("quantity")):
        totals.setdefault(row["order__currency"], {"orders": 0, "units": 0, "amount": "0.00"})
        totals[row["order__currency"]]["units"] = row["units"] or 0
    return dict(sorted(totals.items()))


def edge_totals() -> dict[str, dict]:
    """This node's own running totals: its paid orders (not refunded, declined...), per
    currency - what each batch reports as ``totals``."""
    return _totals(Order.objects.filter(status=Order.Status.PAID))


def day_range(days) -> Q:
    """Orders created on any of ``days`` (UTC dates), as index-friendly time ranges."""
    q = Q(pk__in=[])
    for day in days:
        start = datetime.combine(day, time.min, tzinfo=UTC)
        q |= Q(created_at__gte=start, created_at__lt=start + timedelta(days=1))
    return q


def day_totals(orders, days=None) -> dict[str, dict]:
    """``{"YYYY-MM-DD": {currency: {"orders", "units", "amount"}}}`` of ``orders`` (a queryset
    of Order) by the UTC date of their ``created_at``: for ``days`` only (each present,
    ``{}`` if nothing), or every day with an order (docs/edge.md, "Reconciliation")."""
    if days is not None:
        days = sorted(set(days))
        if not days:
            return {}
        orders = orders.filter(day_range(days))
    out: dict[str, dict] = {day.isoformat(): {} for day in days or ()}
    day = TruncDate("created_at", tzinfo=UTC)
    for row in orders.annotate(day=day).values("day", "currency").annotate(n=Count("id"), amount=Sum("total")):
        out.setdefault(row["day"].isoformat(), {})[row["currency"]] = {
            "orders": row["n"],
            "units": 0,
            # Order.total's two decimals, also where SQLite's sum drops them.
            "amount": format((row["amount"] or Decimal(0)).quantize(Decimal("0.01")), "f"),
        }
    lines = OrderLine.objects.filter(order__in=orders.values("pk")).annotate(
        day=TruncDate("order__created_at", tzinfo=UTC)
    )
    for row in lines.values("day", "order__currency").annotate(units=Sum("quantity")):
        entry = out.setdefault(row["day"].isoformat(), {}).setdefault(
            row["order__currency"], {"orders": 0, "units": 0, "amount": "0.00"}
        )
        entry["units"] = row["units"] or 0
    return {key: dict(sorted(value.items())) for key, value in sorted(out.items())}


def order_days(order_ids) -> list[date]:
    """The UTC dates the orders ``order_ids`` were created on."""
    day = TruncDate("created_at", tzinfo=UTC)
    rows = Order.objects.filter(pk__in=set(order_ids)).annotate(day=day).values_list("day", flat=True)
    return sorted(set(rows))


def edge_day_totals(order_ids) -> dict[str, dict]:
    """This node's paid orders' totals on each day that one of ``order_ids`` (the orders a
    batch's events name) was created: what a batch reports as ``totals.days``."""
    days = order_days(order_ids)
    return day_totals(Order.objects.filter(status=Order.Status.PAID), days) if days else {}


def edge_head() -> dict:
    """This node's outbox head: ``{"seq", "at"}``, the sequence its newest committed event
    has or will get (stamped ones, plus those waiting for a stamp) and that event's time -
    what a batch reports as ``totals.head``, so the cloud can tell its lag."""
    newest = OutboxEvent.objects.order_by("-id").values_list("created_at", flat=True).first()
    seq = outbox_last_seq() + outbox_unstamped_count()
    return {"seq": seq, "at": newest.isoformat() if newest else None}


# -- cloud ---------------------------------------------------------------------------------


def cloud_totals(node: Node) -> dict[str, dict]:
    """The cloud's totals of ``node``'s mirrored orders, shaped as ``edge_totals``."""
    return _totals(Order.objects.filter(status=Order.Status.PAID, origin__node=node))


def contiguous_end(node: Node, after: int) -> int:
    """The highest sequence ``s >= after`` such that every event ``after+1..s`` is held."""
    if not NodeEvent.objects.filter(node=node, seq=after + 1).exists():
        return after
    successor = NodeEvent.objects.filter(node=node, seq=OuterRef("seq") + 1)
    ends = NodeEvent.objects.filter(node=node, seq__gt=after).exclude(Exists(successor))
    return ends.aggregate(end=Min("seq"))["end"]


def node_gaps(node: Node, *, limit: int = 1000) -> list[tuple[int, int]]:
    """The missing sequence ranges of ``node`` (inclusive), between its acknowledged and its
    highest held sequence: events the edge sent later ones after, or batches lost in between."""
    held = NodeEvent.objects.filter(node=node, seq__gt=node.acked_seq).order_by("seq").values_list("seq", flat=True)
    gaps, expected = [], node.acked_seq + 1
    for seq in held.iterator(chunk_size=2000):
        if seq > expected:
            gaps.append((expected, seq - 1))
            if len(gaps) >= limit:
                break
        expected = seq + 1
    return gaps


@dataclass(frozen=True)
class NodeSync:
    node: str
    is_active: bool
    last_sync_at: object
    acked_seq: int
    max_seq: int
    events_held: int
    gaps: list
    edge_totals: dict
    edge_totals_seq: int
    cloud_totals: dict


def node_sync(node: Node) -> NodeSync:
    """One node's sync state as the cloud knows it (reconciliation's raw material)."""
    return NodeSync(
        node=node.node_id,
        is_active=node.is_active,
        last_sync_at=node.last_sync_at,
        acked_seq=node.acked_seq,
        max_seq=node.max_seq,
        events_held=node.events_held,
        gaps=node_gaps(node),
        edge_totals=node.totals,
        edge_totals_seq=node.totals_seq,
        cloud_totals=cloud_totals(node),
    )


def nodes_sync() -> list[NodeSync]:
    return [node_sync(node) for node in Node.objects.all()]


def node_orders_count(node: Node) -> int:
    return NodeOrder.objects.filter(node=node).count()


def events_by_type(node: Node) -> dict[str, int]:
    counts = defaultdict(int)
    for event_type, n in NodeEvent.objects.filter(node=node).values_list("type").annotate(n=Count("id")):
        counts[event_type] = n
    return dict(counts)
