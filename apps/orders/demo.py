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
