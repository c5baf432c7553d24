"""Reads for orders and checkout."""

from __future__ import annotations

from decimal import Decimal

from django.db import connection

from creatorcommerce.fields import iso_utc

from .models import Address, Order, PaymentMethod

# One round trip for everything a buy needs to know before it writes: the SKU (with its
# stock row at the shop's default location) and the buyer's state (an earlier order or
# stored answer under this Idempotency-Key, default payment method, the address the order
# keeps a copy of). A named shop or stream narrows the SKU to that shop inside the
# statement, so other shops using the same code never reach the LIMIT (docs/buying.md,
# "Naming the shop"). This is the
# hottest read in the product, so it is one SQL statement rather than several ORM queries
# (which cost 3.4 ms of Python per buy in the profile). The ORM form of the SKU part is
# apps.catalog.selectors.sku_for_buy.
_BUY_CONTEXT_SQL = """
SELECT
  (SELECT o.id FROM orders_order o WHERE o.buyer_id = u.id AND o.idempotency_key = %(key)s
     AND o.status <> 'failed' LIMIT 1),
  (SELECT o.status FROM orders_order o WHERE o.buyer_id = u.id AND o.idempotency_key = %(key)s
     AND o.status <> 'failed' LIMIT 1),
  (SELECT o.request_fingerprint FROM orders_order o WHERE o.buyer_id = u.id AND o.idempotency_key = %(key)s
     AND o.status <> 'failed' LIMIT 1),
  (SELECT r.id FROM orders_idempotencyrecord r WHERE r.user_id = u.id AND r.key = %(key)s),
  pm.id, pm.token,
  a.id, a.name, a.line1, a.line2, a.city, a.region, a.postal_code, a.country,
  (SELECT st.shop_id FROM streams_stream st WHERE st.id = %(stream)s),
  s.id, s.code, s.title, p.title, s.price, s.currency, s.per_buyer_limit, s.shop_id, l.id
FROM accounts_user u
LEFT JOIN orders_paymentmethod pm ON pm.id = (
  SELECT m.id FROM orders_paymentmethod m WHERE m.user_id = u.id ORDER BY m.is_default DESC, m.created_at DESC LIMIT 1)
LEFT JOIN orders_address a ON a.user_id = u.id
LEFT JOIN (catalog_sku s JOIN catalog_product p ON p.id = s.product_id AND p.is_active)
  ON s.code = %(code)s AND s.is_active
  AND (%(shop)s IS NULL OR s.shop_id = (SELECT sh.id FROM accounts_shop sh WHERE sh.slug = %(shop)s))
  AND (%(stream)s IS NULL OR s.shop_id = (SELECT st.shop_id FROM streams_stream st WHERE st.id = %(stream)s))
LEFT JOIN catalog_location loc ON loc.shop_id = s.shop_id AND loc.is_default
LEFT JOIN catalog_stocklevel l ON l.sku_id = s.id AND l.location_id = loc.id
WHERE u.id = %(buyer)s
LIMIT 2
"""


CENTS = Decimal("0.01")


def buy_context(
    *, buyer_id: int, key: str, sku_code: str, shop_slug: str | None = None, stream_id: int | None = None
) -> dict:
    """Everything the buy path reads, in one query (see _BUY_CONTEXT_SQL).

    ``skus`` lists the matching active SKUs: none (unknown code, or not in the named shop or
    stream's shop), one, or two (the code is used by several shops and neither a shop nor a
    stream was named). ``stream_shop_id`` is the shop of ``stream_id`` (None when there is
    no such stream); ``address`` the buyer's shipping address as a dict, or None.
    """
    params = {"key": key, "code": sku_code, "shop": shop_slug, "stream": stream_id, "buyer": buyer_id}
    with connection.cursor() as cursor:
        cursor.execute(_BUY_CONTEXT_SQL, params)
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
    context["skus"] = [
        {
            "id": row[15],
            "code": row[16],
            "display_title": row[17] or row[18],
            "price": Decimal(str(row[19])).quantize(CENTS),
            "currency": row[20],
            "per_buyer_limit": row[21],
            "shop_id": row[22],
            "level_id": row[23],
        }
        for row in rows
        if row[15] is not None
    ]
    return context


def line_body(line) -> dict:
    """An order line as the API and the receipt show it."""
    return {"sku": line.sku_code, "title": line.title, "quantity": line.quantity, "unit_price": str(line.unit_price)}


def order_body(order: Order, lines=None) -> dict:
    """The API representation of an order; the same order always gives the same body, so a
    replayed request gets the first response again."""
    lines = lines if lines is not None else list(order.lines.all())
    return {
        "id": order.pk,
        "status": order.status,
        "lines": [line_body(line) for line in lines],
        "total": str(order.total),
        "currency": order.currency,
        "receipt": order.receipt or None,
        "created_at": iso_utc(order.created_at),
        "shipping_address": order.shipping_address,
    }


def orders_of_buyer(*, buyer):
    """The buyer's orders, newest first; ``failed`` ones (the gateway never answered,
    nothing was taken) are not orders a buyer made."""
    return (
        Order.objects.filter(buyer=buyer)
        .exclude(status=Order.Status.FAILED)
        .select_related("shop")
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
