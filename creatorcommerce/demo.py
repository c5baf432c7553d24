"""Demo data, for ``seed_demo``: idempotent, so running it twice duplicates nothing.

Each app that has something to show adds a step to ``STEPS`` (accounts here; catalog and
streams add theirs).
"""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.db import transaction

from apps.accounts.models import User
from apps.accounts.services import user_grant_role, user_set_time_zone

DEMO_PASSWORD = "demo-pass-2026"
DEMO_USERS = {
    "viewer": ("viewer@demo.local", "Demo Viewer"),
    "creator": ("creator@demo.local", "Demo Creator"),
    "staff": ("staff@demo.local", "Demo Staff"),
}
# The demo creator schedules in their own zone (not the server's UTC): the admin shows and
# reads their times in it.
DEMO_CREATOR_TIME_ZONE = "Europe/Berlin"


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
    user_set_time_zone(user=users["creator"], time_zone=DEMO_CREATOR_TIME_ZONE)
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


DEMO_STREAM_TITLE = "Friday night drop"


def seed_stream(context: dict) -> dict:
    """A live stream with the demo products pinned and a flash deal on the poster, open for
    the next two hours (a fresh deal is opened when the last one has ended)."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.catalog.models import SKU
    from apps.streams.models import FlashDeal, Stream
    from apps.streams.services import deal_open, pin_add, stream_start

    shop = context["users"]["creator"].shop
    now = timezone.now()
    stream = Stream.objects.filter(shop=shop, title=DEMO_STREAM_TITLE).exclude(status=Stream.Status.ENDED).first()
    if stream is None:
        stream = Stream.objects.create(
            shop=shop,
            title=DEMO_STREAM_TITLE,
            starts_at=now,
            description="Tonight's tee drop, signed posters and a flash deal.",
        )
    if stream.status == Stream.Status.SCHEDULED:
        stream = stream_start(stream=stream, now=now)
    for position, code in enumerate(["TEE-S", "TEE-M", "TEE-L", "POSTER", "STICKERS"], start=1):
        pin_add(stream=stream, sku=SKU.objects.get(shop=shop, code=code), position=position)
    if not FlashDeal.objects.filter(stream=stream, status=FlashDeal.Status.OPEN).exists():
        deal = FlashDeal.objects.create(
            stream=stream,
            sku=SKU.objects.get(shop=shop, code="POSTER"),
            price="35.00",
            quantity=10,
            per_buyer_limit=1,
            opens_at=now,
            closes_at=now + timedelta(hours=2),
        )
        deal_open(deal=deal, now=now)
    return {
        "stream": stream,
        "summary": [
            f"live stream {stream.title!r}: http://127.0.0.1:8000/streams/{stream.pk}/ "
            f"(control room: /streams/{stream.pk}/control/)"
        ],
    }


STEPS = [seed_accounts, seed_catalog, seed_stream]


@transaction.atomic
def seed() -> dict:
    context: dict = {}
    summary: list[str] = []
    for step in STEPS:
        result = step(context)
        summary += result.pop("summary", [])
        context.update(result)
    context["summary"] = summary
    return context
