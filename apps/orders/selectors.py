"""Reads for orders and checkout."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from django.db import connection
from django.utils import timezone

from apps.accounts.models import Shop, User
from apps.catalog.models import SKU, Location, Product, StockLevel
from apps.pricing.registry import buyer_flags, shop_subquery
from creatorcommerce.fields import iso_utc
from creatorcommerce.sql import names

from .models import Address, IdempotencyRecord, Order, OrderLine, PaymentMethod

# One round trip for everything a buy needs to know before it writes: the SKUs (each with
# its stock row at the shop's default location) and the buyer's state (an earlier order or
# stored answer under this Idempotency-Key, default payment method, the address the order
# keeps a copy of). A named shop or stream narrows the SKUs to that shop inside the
# statement, so other shops using the same code never reach the LIMIT (docs/buying.md,
# "Naming the shop"). With a pickup venue, the stock rows are the venue's (and the venue's
# shop, name and address come along); else the default location's. This is the hottest
# read in the product, so it is one SQL statement rather than several ORM queries (which
# cost 3.4 ms of Python per buy in the profile). It is built from the models' metadata,
# once per number of codes (tests/ops/test_hot_sql.py runs it on every database); the ORM
# form of the SKU part is apps.catalog.selectors.sku_for_buy.


@lru_cache(maxsize=32)
def _buy_context_sql(codes: int, using: str = "default") -> str:
    o, r, u = names(Order, using), names(IdempotencyRecord, using), names(User, using)
    pm, a, s, p = names(PaymentMethod, using), names(Address, using), names(SKU, using), names(Product, using)
    sh, loc, lv = names(Shop, using), names(Location, using), names(StockLevel, using)
    stream_shop = shop_subquery("stream", "%(stream)s")
    prior = (
        f"FROM {o.table} o WHERE o.{o.buyer_id} = u.{u.id} AND o.{o.idempotency_key} = %(key)s "
        f"AND o.{o.status} <> %(failed)s LIMIT 1"
    )
    address = ", ".join(f"a.{getattr(a, name)}" for name in Order.SHIPPING_FIELDS)
    in_codes = ", ".join(f"%(code{i})s" for i in range(codes))
    # The pricing providers' flags about the buyer (apps.pricing.registry.buyer_flag), last.
    flags = "".join(f",\n  ({fn(f'u.{u.id}')[0]})" for _, fn in buyer_flags())
    # Identifiers from the models' meta; values are parameters.
    return f"""
SELECT
  (SELECT o.{o.id} {prior}), (SELECT o.{o.status} {prior}), (SELECT o.{o.request_fingerprint} {prior}),
  (SELECT r.{r.id} FROM {r.table} r WHERE r.{r.user_id} = u.{u.id} AND r.{r.key} = %(key)s),
  pm.{pm.id}, pm.{pm.token},
  a.{a.id}, {address},
  {stream_shop},
  s.{s.id}, s.{s.code}, s.{s.title}, p.{p.title}, s.{s.price}, s.{s.currency}, s.{s.per_buyer_limit},
  s.{s.shop_id}, l.{lv.id},
  vl.{loc.shop_id}, vl.{loc.name}, vl.{loc.address},
  (SELECT sf.{sh.shipping_fee} FROM {sh.table} sf WHERE sf.{sh.id} = s.{s.shop_id}){flags}
FROM {u.table} u
LEFT JOIN {pm.table} pm ON pm.{pm.id} = (
  SELECT m.{pm.id} FROM {pm.table} m WHERE m.{pm.user_id} = u.{u.id}
  ORDER BY m.{pm.is_default} DESC, m.{pm.created_at} DESC LIMIT 1)
LEFT JOIN {a.table} a ON a.{a.user_id} = u.{u.id}
LEFT JOIN ({s.table} s JOIN {p.table} p ON p.{p.id} = s.{s.product_id} AND p.{p.is_active})
  ON s.{s.code} IN ({in_codes}) AND s.{s.is_active}
  AND (%(shop)s IS NULL OR s.{s.shop_id} = (SELECT sh.{sh.id} FROM {sh.table} sh WHERE sh.{sh.slug} = %(shop)s))
  AND (%(stream)s IS NULL OR s.{s.shop_id} = {stream_shop})
LEFT JOIN {loc.table} vl ON vl.{loc.id} = %(venue)s AND vl.{loc.kind} = %(venue_kind)s
LEFT JOIN {loc.table} loc ON loc.{loc.shop_id} = s.{s.shop_id}
  AND ((%(venue)s IS NULL AND loc.{loc.is_default}) OR loc.{loc.id} = %(venue)s)
LEFT JOIN {lv.table} l ON l.{lv.sku_id} = s.{s.id} AND l.{lv.location_id} = loc.{loc.id}
WHERE u.{u.id} = %(buyer)s
{"LIMIT 2" if codes == 1 else ""}
"""  # noqa: S608


CENTS = Decimal("0.01")


def buy_context(
    *,
    buyer_id: int,
    key: str,
    codes: list[str],
    shop_slug: str | None = None,
    stream_id: int | None = None,
    venue_id: int | None = None,
    now=None,
) -> dict:
    """Everything the buy path reads, in one query (see _buy_context_sql).

    ``skus`` lists the active SKUs the codes name (in apps.pricing.selectors.resolve_lines'
    row shape): none for an unknown code or one not in the named shop or stream's shop,
    one, or several for a code several shops use when neither a shop nor a stream was
    named (a single code reads two at most: enough to tell). ``stream_shop_id`` is the shop
    of ``stream_id`` (None when there is no such stream); ``address`` the buyer's shipping
    address as a dict, or None. With ``venue_id`` (a pickup), each SKU's ``level_id`` is its
    stock row at that venue, and ``venue`` is ``{"id", "shop_id", "name", "address"}``, or
    None when there is no venue location of that id. ``buyer_flags`` are the pricing
    providers' flags about the buyer at ``now`` (``Context.buyer_flags``).
    """
    params = {
        "key": key,
        "shop": shop_slug,
        "stream": stream_id,
        "buyer": buyer_id,
        "failed": Order.Status.FAILED,
        "venue": venue_id,
        "venue_kind": Location.Kind.VENUE,
    }
    params.update({f"code{i}": code for i, code in enumerate(codes)})
    params["now"] = connection.ops.adapt_datetimefield_value(now or timezone.now())
    for _, fn in buyer_flags():
        params.update(fn("")[1])
    with connection.cursor() as cursor:
        cursor.execute(_buy_context_sql(len(codes)), params)
        rows = cursor.fetchall()
    first = rows[0]
    context = dict(
        zip(
            (
                "prior_order_id",
                "prior_order_status",
                "prior_order_fingerprint",
                "prior_record_id",
                "payment_method_id",
                "payment_token",
            ),
            first[:6],
            strict=True,
        )
    )
    context["address"] = dict(zip(Order.SHIPPING_FIELDS, first[7:14], strict=True)) if first[6] else None
    context["has_address"] = context["address"] is not None
    context["stream_id"], context["stream_shop_id"] = stream_id, first[14]
    context["venue"] = (
        {"id": venue_id, "shop_id": first[24], "name": first[25], "address": first[26]}
        if venue_id is not None and first[24] is not None
        else None
    )
    context["buyer_flags"] = tuple(
        (name, bool(value)) for (name, _), value in zip(buyer_flags(), first[28:], strict=True)
    )
    context["skus"] = [
        {
            "id": row[15],
            "code": row[16],
            "title": row[17] or row[18],
            "price": Decimal(str(row[19])).quantize(CENTS),
            "currency": row[20],
            "per_buyer_limit": row[21],
            "shop_id": row[22],
            "shipping_fee": Decimal(str(row[27] or 0)).quantize(CENTS),
            "level_id": row[23],
        }
        for row in rows
        if row[15] is not None
    ]
    return context


def line_body(line) -> dict:
    """An order line as the API and the receipt show it: ``unit_price`` is the list price,
    ``adjustments`` how applied offers changed it, ``total`` what the line cost."""
    return {
        "sku": line.sku_code,
        "title": line.title,
        "quantity": line.quantity,
        "unit_price": str(line.unit_price),
        "adjustments": line.adjustments,
        "total": str(line.total),
    }


def order_body(order: Order, lines=None) -> dict:
    """The API representation of an order; the same order always gives the same body, so a
    replayed request gets the first response again."""
    lines = lines if lines is not None else list(order.lines.all())
    subtotal = sum((line.subtotal for line in lines), Decimal("0.00"))
    lines_total = sum((line.total for line in lines), Decimal("0.00"))
    return {
        "id": order.pk,
        "status": order.status,
        "lines": [line_body(line) for line in lines],
        "subtotal": str(subtotal),
        "discount": str(subtotal - lines_total),
        "shipping": shipping_body(order),
        "total": str(order.total),
        "currency": order.currency,
        "receipt": order.receipt or None,
        "created_at": iso_utc(order.created_at),
        "shipping_address": order.shipping_address,
        "fulfilment": order.fulfilment,
        "pickup": pickup_body(order),
        # Only on orders an edge node accepted offline: other orders keep their shape.
        **({"offline": offline_body(order)} if order.offline_accepted_at else {}),
    }


# What the buyer is told about the payment of an order accepted offline, by payment status.
OFFLINE_CAPTURE = {
    Order.PaymentStatus.PENDING: "pending",
    Order.PaymentStatus.AUTHORIZED: "pending",
    Order.PaymentStatus.CAPTURED: "captured",
    Order.PaymentStatus.DECLINED: "declined",
    Order.PaymentStatus.VOIDED: "refunded",
    Order.PaymentStatus.REFUNDED: "refunded",
}


def offline_body(order: Order) -> dict:
    """An order accepted offline (docs/buying.md, "Offline selling"): when, and where its
    payment is - ``pending`` (not taken yet), ``captured``, ``declined`` (refused later: the
    creator decides) or ``refunded``."""
    return {
        "accepted_at": iso_utc(order.offline_accepted_at),
        "capture": OFFLINE_CAPTURE.get(order.payment_status, "pending"),
    }


def shipping_body(order: Order) -> dict:
    """What the order charged for shipping (docs/pricing.md, "Shipping"): the shop's fee at
    the buy, the offers that changed it (a free-shipping perk), and what was paid."""
    return {
        "fee": str(order.shipping_fee),
        "adjustments": order.shipping_adjustments,
        "total": str(order.shipping_total),
    }


def pickup_body(order: Order) -> dict | None:
    """Where a pickup order is picked up (docs/buying.md, "Pickup at a venue"); None for
    delivery."""
    if order.fulfilment != Order.Fulfilment.PICKUP or order.pickup_location_id is None:
        return None
    location = order.pickup_location
    return {"venue": location.pk, "name": location.name, "address": location.address}


def unit_sources_with_orders(*, keys) -> set[str]:
    """Which of ``keys`` (``deal:<id>``, ...: an order line's ``unit_source``) some order
    line took its units from."""
    return set(OrderLine.objects.filter(unit_source__in=list(keys)).values_list("unit_source", flat=True).distinct())


def orders_of_buyer(*, buyer):
    """The buyer's orders, newest first; ``failed`` ones (the gateway never answered,
    nothing was taken) are not orders a buyer made."""
    return (
        Order.objects.filter(buyer=buyer)
        .exclude(status=Order.Status.FAILED)
        .select_related("shop", "pickup_location")
        .prefetch_related("lines")
    )


def order_of_buyer(*, buyer, order_id: int) -> Order | None:
    return orders_of_buyer(buyer=buyer).filter(pk=order_id).first()


def checkout_profile(*, user) -> dict:
    methods = list(PaymentMethod.objects.filter(user=user))
    address = Address.objects.filter(user=user).first()
    return {
        "payment_methods": [
            {"id": m.pk, "brand": m.brand, "last4": m.last4, "is_default": m.is_default} for m in methods
        ],
        "address": address_body(address) if address else None,
        "complete": bool(methods) and address is not None,
    }


def address_body(address: Address) -> dict:
    return {
        "name": address.name,
        "line1": address.line1,
        "line2": address.line2,
        "city": address.city,
        "region": address.region,
        "postal_code": address.postal_code,
        "country": address.country,
    }
