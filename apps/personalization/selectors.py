"""The personalisation app's reads of orders (docs/personalization.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection
from django.utils.dateparse import parse_datetime

from apps.orders.models import Order, OrderLine
from creatorcommerce.sql import names

# Orders whose units are sold: paid, accepted offline (payment pending) and those whose later
# capture was refused (still sold; docs/buying.md). Refunded, declined, expired and failed
# orders teach the model nothing.
SOLD = (Order.Status.PAID, Order.Status.ACCEPTED_OFFLINE, Order.Status.CAPTURE_DECLINED)


def training_rows(*, shop_id: int, now: datetime, window_days: int) -> list[tuple[int, int, int, datetime]]:
    """(order id, buyer id, SKU id, order time) of every line of the shop's sold orders in the window."""
    return list(
        OrderLine.objects.filter(
            order__shop_id=shop_id, order__status__in=SOLD, order__created_at__gte=now - timedelta(days=window_days)
        )
        .order_by()
        .values_list("order_id", "order__buyer_id", "sku_id", "order__created_at")
    )


def last_sold_order_id(*, shop_id: int) -> int:
    return (
        Order.objects.filter(shop_id=shop_id, status__in=SOLD).order_by("-pk").values_list("pk", flat=True).first() or 0
    )


def history_sql(using: str = "default") -> str:
    """``viewer_history``'s statement: identifiers from the models' meta (creatorcommerce/sql.py),
    values (the viewer, the shop, the sold statuses) parameters."""
    o, ln = names(Order, using), names(OrderLine, using)
    statuses = ", ".join(["%s"] * len(SOLD))
    return (
        f"SELECT l.{ln.sku_id}, MAX(o.{o.created_at}) FROM {ln.table} l "  # noqa: S608
        f"JOIN {o.table} o ON o.{o.id} = l.{ln.order_id} "
        f"WHERE o.{o.buyer_id} = %s AND o.{o.shop_id} = %s AND o.{o.status} IN ({statuses}) "
        f"GROUP BY l.{ln.sku_id}"
    )


_HISTORY_SQL: str | None = None


def viewer_history(*, shop_id: int, user_id: int) -> list[tuple[int, datetime]]:
    """(SKU id, latest purchase) of every item the viewer bought in the shop: one statement
    on the orders' buyer index, built once per process (the ORM would cost more than the
    query on this path; docs/personalization.md, "Cost")."""
    global _HISTORY_SQL
    if _HISTORY_SQL is None:
        _HISTORY_SQL = history_sql()
    with connection.cursor() as cursor:
        cursor.execute(_HISTORY_SQL, [user_id, shop_id, *SOLD])
        rows = cursor.fetchall()
    # SQLite hands a raw aggregate over a datetime back as its text (stored in UTC).
    return [(sku, at if isinstance(at, datetime) else _utc(at)) for sku, at in rows]


def _utc(text: str) -> datetime:
    value = parse_datetime(text)
    if value is None:
        raise ValueError(f"not a datetime: {text!r}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
