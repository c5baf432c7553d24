"""The orders app's demo step: the demo viewer's saved test card and address, so their buys
are one tap."""

from __future__ import annotations

from .models import Address, PaymentMethod
from .services import address_set, payment_method_add


def seed(context: dict) -> dict:
    viewer = context["users"]["viewer"]
    if not PaymentMethod.objects.filter(user=viewer).exists():
        payment_method_add(user=viewer, token="tok_ok")
    if not Address.objects.filter(user=viewer).exists():
        address_set(
            user=viewer, name="Demo Viewer", line1="1 Market Street", city="Berlin", postal_code="10115", country="DE"
        )
    return {"summary": ["the demo viewer has a saved test card (tok_ok) and address, so buys are one tap"]}


def past_order(*, buyer, shop, lines, key: str, at):
    """A demo order placed through the buy (``order_place``) and dated ``at``, as if it
    happened then (loyalty's retention history, personalisation's co-purchases). Raises if
    the buy was refused: demo data must be real orders."""
    from .models import Order
    from .services import order_place, request_fingerprint

    outcome = order_place(
        buyer=buyer,
        lines=lines,
        shop_slug=shop.slug,
        idempotency_key=key,
        fingerprint=request_fingerprint({"lines": lines, "shop": shop.slug}),
        now=at,
    )
    if outcome.order is None or outcome.order.status != Order.Status.PAID:
        raise RuntimeError(f"the demo's past order {key} was refused: {outcome.body}")
    # The buy path stamps the clock; the order happened at ``at``.
    Order.objects.filter(pk=outcome.order.pk).update(created_at=at, paid_at=at)
    return outcome.order
