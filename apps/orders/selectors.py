"""Reads for orders and checkout."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Subquery

from apps.accounts.models import User

from .models import Address, IdempotencyRecord, Order, PaymentMethod


def buy_context(*, buyer_id: int, key: str) -> dict:
    """Everything the buy path needs to know about the buyer, in one query: an earlier
    order or stored answer under this Idempotency-Key, the default payment method, and
    whether an address is saved."""
    prior_order = Order.objects.filter(buyer=OuterRef("pk"), idempotency_key=key).exclude(status=Order.Status.FAILED)
    prior_record = IdempotencyRecord.objects.filter(user=OuterRef("pk"), key=key)
    payment = PaymentMethod.objects.filter(user=OuterRef("pk")).order_by("-is_default", "-created_at")
    row = (
        User.objects.filter(pk=buyer_id)
        .annotate(
            prior_order_id=Subquery(prior_order.values("pk")[:1]),
            prior_order_status=Subquery(prior_order.values("status")[:1]),
            prior_order_fingerprint=Subquery(prior_order.values("request_fingerprint")[:1]),
            prior_record_id=Subquery(prior_record.values("pk")[:1]),
            payment_method_id=Subquery(payment.values("pk")[:1]),
            payment_token=Subquery(payment.values("token")[:1]),
            has_address=Exists(Address.objects.filter(user=OuterRef("pk"))),
        )
        .values(
            "prior_order_id",
            "prior_order_status",
            "prior_order_fingerprint",
            "prior_record_id",
            "payment_method_id",
            "payment_token",
            "has_address",
        )
        .get()
    )
    return row


def order_body(order: Order, lines=None) -> dict:
    """The API representation of an order; the same order always gives the same body, so a
    replayed request gets the first response again."""
    lines = lines if lines is not None else list(order.lines.all())
    return {
        "id": order.pk,
        "status": order.status,
        "lines": [
            {"sku": line.sku_code, "title": line.title, "quantity": line.quantity, "unit_price": str(line.unit_price)}
            for line in lines
        ],
        "total": str(order.total),
        "currency": order.currency,
        "receipt": order.receipt or None,
        "created_at": order.created_at.isoformat().replace("+00:00", "Z"),
    }


def orders_of_buyer(*, buyer):
    return Order.objects.filter(buyer=buyer).exclude(status=Order.Status.FAILED).prefetch_related("lines")


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
