"""Demo data, for ``seed_demo``: idempotent, so running it twice duplicates nothing.

Each app that has something to show adds a step to ``STEPS`` (accounts here; catalog and
streams add theirs).
"""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.db import transaction

from apps.accounts.models import User
from apps.accounts.services import user_grant_role

DEMO_PASSWORD = "demo-pass-2026"
DEMO_USERS = {
    "viewer": ("viewer@demo.local", "Demo Viewer"),
    "creator": ("creator@demo.local", "Demo Creator"),
    "staff": ("staff@demo.local", "Demo Staff"),
}


def _user(email: str, display_name: str) -> User:
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=DEMO_PASSWORD, display_name=display_name)
    EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
    return user


def seed_accounts(context: dict) -> dict:
    users = {role: _user(email, name) for role, (email, name) in DEMO_USERS.items()}
    user_grant_role(email=users["creator"].email, role="creator", shop_name="Demo Studio")
    user_grant_role(email=users["staff"].email, role="staff")
    return {"users": {role: User.objects.get(pk=u.pk) for role, u in users.items()}}


DEMO_PRODUCTS = [
    (
        "Drop tee",
        "Heavyweight cotton tee from tonight's drop.",
        [
            {"code": "TEE-S", "title": "Drop tee, S", "price": "29.00", "stock": 40, "per_buyer_limit": 2},
            {"code": "TEE-M", "title": "Drop tee, M", "price": "29.00", "stock": 60, "per_buyer_limit": 2},
            {"code": "TEE-L", "title": "Drop tee, L", "price": "29.00", "stock": 40, "per_buyer_limit": 2},
        ],
    ),
    (
        "Signed poster",
        "A2 print, signed live on stream.",
        [
            {"code": "POSTER", "price": "45.00", "stock": 25, "per_buyer_limit": 1},
        ],
    ),
    ("Sticker pack", "Six vinyl stickers.", [{"code": "STICKERS", "price": "6.50", "stock": 300}]),
]


def seed_catalog(context: dict) -> dict:
    from apps.catalog.models import SKU
    from apps.catalog.services import product_create
    from apps.orders.models import Address, PaymentMethod
    from apps.orders.services import address_set, payment_method_add

    shop = context["users"]["creator"].shop
    for title, description, skus in DEMO_PRODUCTS:
        if not SKU.objects.filter(shop=shop, code=skus[0]["code"]).exists():
            product_create(shop=shop, title=title, description=description, skus=skus)
    viewer = context["users"]["viewer"]
    if not PaymentMethod.objects.filter(user=viewer).exists():
        payment_method_add(user=viewer, token="tok_ok")
    if not Address.objects.filter(user=viewer).exists():
        address_set(
            user=viewer, name="Demo Viewer", line1="1 Market Street", city="Berlin", postal_code="10115", country="DE"
        )
    return {
        "summary": [
            f"shop {shop.name!r}: {SKU.objects.filter(shop=shop).count()} SKUs; the demo viewer "
            "has a saved test card (tok_ok) and address, so buys are one tap"
        ]
    }


STEPS = [seed_accounts, seed_catalog]


@transaction.atomic
def seed() -> dict:
    context: dict = {}
    for step in STEPS:
        context.update(step(context))
    return context
