"""The personalisation app's reads of orders (docs/personalization.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection

from apps.orders.models import Order, OrderLine

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


_HISTORY_SQL = None


def _history_sql() -> str:
    global _HISTORY_SQL
    if _HISTORY_SQL is None:
        statuses = ", ".join(f"'{s}'" for s in SOLD)  # constants of the model, not input
        _HISTORY_SQL = (
            f"SELECT l.sku_id, MAX(o.created_at) FROM {OrderLine._meta.db_table} l "  # noqa: S608
            f"JOIN {Order._meta.db_table} o ON o.id = l.order_id "
            f"WHERE o.buyer_id = %s AND o.shop_id = %s AND o.status IN ({statuses}) GROUP BY l.sku_id"
        )
    return _HISTORY_SQL


def viewer_history(*, shop_id: int, user_id: int) -> list[tuple[int, datetime]]:
    """(SKU id, latest purchase) of every item the viewer bought in the shop: one statement
    on the orders' buyer index, built once per process (the ORM would cost more than the
    query on this path; docs/personalization.md, "Cost")."""
    with connection.cursor() as cursor:
        cursor.execute(_history_sql(), [user_id, shop_id])
        return cursor.fetchall()
