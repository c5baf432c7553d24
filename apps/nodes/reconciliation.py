"""Reconciliation on the cloud (docs/edge.md, "Reconciliation"): per registered edge, how
far behind the cloud is (lag in events and seconds), the edge's reported totals against the
cloud's own sums over the node's mirrored orders (in all and per day), the missing sequence
ranges, and the orders the edge accepted offline whose capture the cloud has not heard of.

Reads only; the API (``api.py``) and the admin page (``admin.py``) show what these return.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from apps.orders.models import Order

from .models import Node, NodeDay, NodeEvent
from .selectors import cloud_totals, day_totals, node_gaps

CENTS = Decimal("0.01")
#: Most pending offline orders listed one by one (their count and sums cover them all).
PENDING_LISTED = 100
#: Most unresolved events listed one by one.
UNRESOLVED_LISTED = 20
#: Most days in the API's per-day breakdown (newest first).
DAYS_LISTED = 400


def _amount(value) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def summary(by_currency: dict | None) -> dict | None:
    """``{currency: {"orders", "units", "amount"}}`` as the API shows totals: ``{"orders",
    "units", "amount": {currency: "decimal"}}`` (counts summed over currencies)."""
    if by_currency is None:
        return None
    entries = {c: e for c, e in sorted(by_currency.items()) if isinstance(e, dict)}
    return {
        "orders": sum(int(e.get("orders") or 0) for e in entries.values()),
        "units": sum(int(e.get("units") or 0) for e in entries.values()),
        # Order.total has two decimals; a SQLite edge's sums lose their scale ("20" for "20.00").
        "amount": {c: format(_amount(e.get("amount")).quantize(CENTS), "f") for c, e in entries.items()},
    }


def _normal(by_currency: dict | None) -> dict:
    """Comparable totals: currencies with nothing left out, amounts as Decimals."""
    out = {}
    for currency, entry in (by_currency or {}).items():
        if not isinstance(entry, dict):
            continue
        row = (int(entry.get("orders") or 0), int(entry.get("units") or 0), _amount(entry.get("amount")))
        if row != (0, 0, Decimal(0)):
            out[currency] = row
    return out


def totals_match(edge: dict | None, cloud: dict | None) -> bool:
    """Whether the edge's and the cloud's totals agree per currency: orders, units, money."""
    return edge is not None and _normal(edge) == _normal(cloud)


def lag_window(node: Node) -> tuple[datetime | None, datetime | None]:
    """The two times ``lag_seconds`` lies between, both on the edge's clock: the edge's time
    of the newest acknowledged event (``acked_seq``; with nothing acknowledged, of the oldest
    event held) and of its newest event (its reported head, or the held event at
    ``max_seq``). ``(None, None)`` when nothing is behind."""
    if max(node.head_seq, node.max_seq) <= node.acked_seq:
        return None, None
    times = dict(
        NodeEvent.objects.filter(node=node, seq__in=[node.acked_seq, node.max_seq]).values_list("seq", "created_at")
    )
    newest_at = node.head_at if node.head_seq >= node.max_seq and node.head_at else times.get(node.max_seq)
    acked_at = times.get(node.acked_seq)
    if acked_at is None:  # nothing acknowledged yet: measure from the oldest event held
        acked_at = NodeEvent.objects.filter(node=node).order_by("seq").values_list("created_at", flat=True).first()
    return acked_at, newest_at


def node_lag(node: Node) -> dict:
    """``{"lag_events", "lag_seconds"}`` (docs/edge.md, "Reconciliation"):

    - ``lag_events``: the events the edge says it has (its reported outbox head, or the
      highest sequence it sent) minus ``acked_seq``;
    - ``lag_seconds``: the edge's time of its newest reported event minus the edge's time of
      the newest acknowledged event (``acked_seq``), both on the edge's clock; 0 when
      nothing is behind. With nothing acknowledged, from the oldest event held.
    """
    lag_events = max(0, max(node.head_seq, node.max_seq) - node.acked_seq)
    if lag_events == 0:
        return {"lag_events": 0, "lag_seconds": 0.0}
    acked_at, newest_at = lag_window(node)
    seconds = (newest_at - acked_at).total_seconds() if newest_at and acked_at else 0.0
    return {"lag_events": lag_events, "lag_seconds": round(max(0.0, seconds), 3)}


def node_row(node: Node) -> dict:
    """One node in ``GET /api/v1/nodes/``."""
    return {
        "id": node.node_id,
        "role": "edge",
        "active": node.is_active,
        "last_sync_at": node.last_sync_at,
        "acked_seq": node.acked_seq,
        "max_seq": node.max_seq,
        **node_lag(node),
    }


def nodes_list() -> list[dict]:
    return [node_row(node) for node in Node.objects.order_by("node_id")]


def pending_captures(node: Node) -> dict:
    """The node's orders accepted offline and not captured (nor declined) yet, as the cloud
    knows them: each order with an ``order.accepted_offline`` event held whose newest held
    ``order.*`` event's document (relayed as it stood then) is still ``accepted_offline``.
    ``{"orders", "amount": {currency: "decimal"}, "items": [...]}``."""
    offline = dict(
        NodeEvent.objects.filter(node=node, type="order.accepted_offline").values_list("payload__order", "created_at")
    )
    ids = [order for order in offline if isinstance(order, int)]
    newest: dict[int, tuple[str, dict]] = {}
    if ids:
        events = (
            NodeEvent.objects.filter(node=node, type__startswith="order.", payload__order__in=ids)
            .order_by("seq")
            .values_list("payload", "refs", "type")
        )
        for payload, refs, event_type in events.iterator(chunk_size=500):
            newest[payload["order"]] = (event_type, refs.get("order") or payload)
    items, amounts, count = [], {}, 0
    for order, (event_type, doc) in sorted(newest.items()):
        status = doc.get("status") or ("accepted_offline" if event_type == "order.accepted_offline" else "")
        if status != Order.Status.ACCEPTED_OFFLINE:
            continue
        count += 1
        currency = str(doc.get("currency") or "")
        total = _amount(doc.get("total"))
        amounts[currency] = amounts.get(currency, Decimal(0)) + total
        if len(items) < PENDING_LISTED:
            items.append(
                {"edge_order": order, "total": format(total, "f"), "currency": currency, "accepted_at": offline[order]}
            )
    return {"orders": count, "amount": {c: format(a, "f") for c, a in sorted(amounts.items())}, "items": items}


def unresolved(node: Node) -> dict:
    """Events the cloud held but could not apply (names it does not know, a document its
    database refuses: docs/edge.md, "Ingest"): ``{"events", "items": [{"seq", "type",
    "detail"}]}``, the newest 20 listed."""
    rows = NodeEvent.objects.filter(node=node, outcome=NodeEvent.Outcome.UNRESOLVED)
    listed = rows.order_by("-seq").values_list("seq", "type", "detail", "created_at")[:UNRESOLVED_LISTED]
    # created_at (the edge's time of the event) is for the admin page; the API lists seq, type, detail.
    items = [
        {"seq": seq, "type": event_type, "detail": detail, "created_at": created_at}
        for seq, event_type, detail, created_at in listed
    ]
    return {"events": rows.count() if len(items) == UNRESOLVED_LISTED else len(items), "items": items}


def days_compared(node: Node) -> list[dict]:
    """Per day (UTC date of the orders' ``created_at``), newest first: the edge's totals as
    it last reported that day (null if it never did: batches before per-day totals), the
    cloud's over the node's mirrored paid orders, and whether they match."""
    reported = {row.date: row for row in NodeDay.objects.filter(node=node)}
    cloud = day_totals(Order.objects.filter(status=Order.Status.PAID, origin__node=node))
    days = sorted({*reported, *(date.fromisoformat(d) for d in cloud)}, reverse=True)
    out = []
    for day in days:
        edge = reported[day].totals if day in reported else None
        theirs = cloud.get(day.isoformat(), {})
        out.append(
            {
                "date": day,
                "edge": summary(edge),
                "cloud": summary(theirs),
                "match": totals_match(edge, theirs),
                "edge_by_currency": edge,
                "cloud_by_currency": theirs,
                "reported_at": reported[day].reported_at if day in reported else None,
            }
        )
    return out


def node_reconciliation(node: Node) -> dict:
    """``GET /api/v1/nodes/<id>/reconciliation/`` (docs/edge.md, "Reconciliation")."""
    theirs = cloud_totals(node)
    days = days_compared(node)
    return {
        "node": node.node_id,
        "active": node.is_active,
        "last_sync_at": node.last_sync_at,
        "acked_seq": node.acked_seq,
        "max_seq": node.max_seq,
        "head_seq": max(node.head_seq, node.max_seq),
        **node_lag(node),
        "edge": summary(node.totals),
        "cloud": summary(theirs),
        "match": totals_match(node.totals, theirs),
        "totals_seq": node.totals_seq,
        "gaps": [[a, b] for a, b in node_gaps(node)],
        "pending_captures": pending_captures(node),
        "unresolved": unresolved(node),
        "days": [{key: day[key] for key in ("date", "edge", "cloud", "match")} for day in days[:DAYS_LISTED]],
    }
