"""The loyalty app's demo steps (docs/loyalty.md, "Demo").

``seed`` (in ``seed_demo``'s transaction): two badges of the demo drop, "Early supporter"
(the first 1,000 buyers, no review) and "Superfan" (any buy in the drop, needs review,
grants 10 % off the next order); a shop-wide "Insider" (a third order in the shop, no
review, grants early access to a flash deal 30 minutes before it opens); two lifetime
tiers, "Silver" from 50.00 (free shipping on the next order) and "Gold" from 200.00 (15 %
off the next order); three demo fans with awards, some granted and some pending, so staff
see a real queue at /admin/loyalty/award/?status__exact=pending; and the demo's past
buyers (the fans and six shoppers) with a saved card and address.

``history`` (after that transaction has committed: ``order_place`` commits by itself): the
past buyers' orders in the demo shop over the last eight weeks, first-time and repeat
buyers, so the retention chart (/admin/loyalty/award/retention/) has cohorts to show. Each
is a real buy (``order_place``: stock, shipping, perks, ``order.placed`` and its handlers,
which award "Insider" to the third order and Silver's perk at 50.00); the buy path stamps
``paid_at`` with the clock, so the history then moves each order's ``created_at`` and
``paid_at`` back to its day, as tests/loyalty/test_retention.py does.

Awards in ``seed`` go through ``awards.award_create`` as the rules' handlers would (a
badge that needs review leaves its award pending). The demo viewer gets none here: their
first buy in the drop earns "Early supporter" live (and a pending "Superfan"), their third
order "Insider". Running either step twice changes nothing that is already there.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from apps.accounts.demo import demo_user
from apps.orders.demo import past_order
from apps.orders.models import Address, Order, PaymentMethod
from apps.orders.services import address_set, payment_method_add

from .awards import award_create
from .badges import badge_save
from .models import Award, Badge, PerkKind, Tier
from .tiers import tier_save

EARLY_SUPPORTER = "Early supporter"
SUPERFAN = "Superfan"
INSIDER = "Insider"
INSIDER_ORDERS = 3
EARLY_ACCESS_MINUTES = 30
# "Any buy in the demo drop": the first N buyers with an N no drop reaches.
ANY_BUYER = 1_000_000
DEMO_FANS = {
    "fan1@demo.local": ("Demo Fan One", [EARLY_SUPPORTER, SUPERFAN]),
    "fan2@demo.local": ("Demo Fan Two", [EARLY_SUPPORTER, SUPERFAN]),
    "fan3@demo.local": ("Demo Fan Three", [SUPERFAN]),
}
DEMO_SHOPPERS = {f"shopper{n}@demo.local": f"Demo Shopper {n}" for n in range(1, 7)}
DEMO_TIERS = [
    ("Silver", Decimal("50.00"), {"perk_kind": PerkKind.FREE_SHIPPING, "perk_valid_days": 60}),
    ("Gold", Decimal("200.00"), {"perk_kind": PerkKind.PERCENT_OFF, "perk_percent": Decimal("15.00")}),
]
# The past orders: (buyer, days ago, [(SKU, quantity)]), oldest first. Eight weekly cohorts,
# first-time and repeat buyers; fan1 and fan2 hold "Early supporter", fan1 and shopper3
# reach a third order ("Insider"). Never TEE-M (the pop-up's bundle tee keeps its stock)
# and at most the SKUs' per-buyer limits.
DEMO_HISTORY = [
    ("shopper1@demo.local", 54, [("STICKERS", 2)]),
    ("fan1@demo.local", 47, [("STICKERS", 1)]),
    ("fan3@demo.local", 43, [("STICKERS", 3)]),
    ("fan2@demo.local", 40, [("POSTER", 1)]),
    ("fan1@demo.local", 33, [("TEE-S", 1)]),
    ("shopper2@demo.local", 32, [("TEE-S", 1)]),
    ("shopper1@demo.local", 27, [("STICKERS", 1)]),
    ("shopper3@demo.local", 26, [("POSTER", 1)]),
    ("shopper4@demo.local", 20, [("TEE-L", 1)]),
    ("shopper3@demo.local", 18, [("STICKERS", 2)]),
    ("fan1@demo.local", 13, [("STICKERS", 2)]),
    ("shopper5@demo.local", 12, [("STICKERS", 1)]),
    ("fan3@demo.local", 6, [("TEE-L", 1)]),
    ("shopper6@demo.local", 5, [("TEE-S", 1)]),
    ("shopper3@demo.local", 4, [("STICKERS", 1)]),
    ("shopper6@demo.local", 1, [("STICKERS", 2)]),
]


def _badge(shop, stream, name: str, **fields) -> Badge:
    badge = Badge.objects.filter(shop=shop, name=name).first()
    if badge is None:
        return badge_save(shop=shop, name=name, stream=stream, **fields)
    if stream is not None and badge.stream_id != stream.pk:  # the last demo drop ended; a re-seed made a new one
        badge = badge_save(shop=shop, badge=badge, stream=stream)
    return badge


def _ready_to_buy(user, name: str) -> None:
    """A past buyer's saved test card and address (apps/orders/demo.py does the viewer's)."""
    if not PaymentMethod.objects.filter(user=user).exists():
        payment_method_add(user=user, token="tok_ok")
    if not Address.objects.filter(user=user).exists():
        address_set(user=user, name=name, line1="5 Demo Street", city="Berlin", postal_code="10115", country="DE")


def seed(context: dict) -> dict:
    shop = context["users"]["creator"].shop
    stream = context["stream"]
    now = timezone.now()
    badges = {
        EARLY_SUPPORTER: _badge(
            shop,
            stream,
            EARLY_SUPPORTER,
            icon="🌟",
            description="One of the first 1,000 buyers of the Friday night drop.",
            rule=Badge.Rule.FIRST_BUYERS,
            count=1000,
        ),
        SUPERFAN: _badge(
            shop,
            stream,
            SUPERFAN,
            icon="💖",
            description="Bought in the Friday night drop. Staff check each one; it brings 10 % off the next order.",
            rule=Badge.Rule.FIRST_BUYERS,
            count=ANY_BUYER,
            needs_review=True,
            perk_kind=PerkKind.PERCENT_OFF,
            perk_percent=Decimal("10.00"),
            perk_valid_days=30,
        ),
        INSIDER: _badge(
            shop,
            None,
            INSIDER,
            icon="🔑",
            description=f"A third order in the shop: buy a flash deal {EARLY_ACCESS_MINUTES} minutes before everyone.",
            rule=Badge.Rule.REPEAT,
            count=INSIDER_ORDERS,
            perk_kind=PerkKind.EARLY_ACCESS,
            perk_minutes=EARLY_ACCESS_MINUTES,
            perk_valid_days=30,
        ),
    }
    for name, threshold, perk in DEMO_TIERS:
        if not Tier.objects.filter(shop=shop, name=name).exists():
            tier_save(shop=shop, name=name, threshold=threshold, period=Tier.Period.LIFETIME, **perk)

    scope = f"stream:{stream.pk}"
    for email, (display_name, names) in DEMO_FANS.items():
        fan = demo_user(email, display_name)
        _ready_to_buy(fan, display_name)
        for name in names:
            badge = badges[name]
            if not Award.objects.filter(badge=badge, user=fan, scope=scope).exists():
                award_create(badge=badge, user=fan, scope=scope, stream_id=stream.pk, now=now)
    for email, display_name in DEMO_SHOPPERS.items():
        _ready_to_buy(demo_user(email, display_name), display_name)

    pending = Award.objects.filter(badge__shop=shop, status=Award.Status.PENDING).count()
    return {
        "badges": badges,
        "summary": [
            f"badges {EARLY_SUPPORTER!r} and {SUPERFAN!r} (needs review, 10 % off) on the demo drop and "
            f"{INSIDER!r} (third order: {EARLY_ACCESS_MINUTES} minutes' early access to a flash deal); tiers Silver "
            f"(free shipping) and Gold (15 % off); {pending} award(s) pending review at "
            "/admin/loyalty/award/?status__exact=pending"
        ],
    }


def history_key(email: str, days_ago: int) -> str:
    """The Idempotency-Key of a past order: a re-seed replays it instead of buying again."""
    return f"demo-history-{email}-{days_ago}"


def history(context: dict) -> dict:
    """The past buyers' orders (``DEMO_HISTORY``), each once. Runs with no transaction open
    (``creatorcommerce.demo.AFTER_COMMIT``): ``order_place`` commits, and pays, by itself."""
    shop = context["users"]["creator"].shop
    now = timezone.now()
    placed = 0
    for email, days_ago, lines in DEMO_HISTORY:
        key = history_key(email, days_ago)
        buyer = demo_user(email, "")
        if Order.objects.filter(buyer=buyer, idempotency_key=key).exists():
            continue
        at = (now - timedelta(days=days_ago)).replace(hour=18, minute=30, second=0, microsecond=0)
        past_order(buyer=buyer, shop=shop, lines=lines, key=key, at=at)
        placed += 1
    paid = Order.objects.filter(shop=shop, idempotency_key__startswith="demo-history-").count()
    return {
        "summary": [
            f"{paid} past orders of {len({e for e, _, _ in DEMO_HISTORY})} buyers over eight weeks "
            f"({placed} placed now): retention chart at /admin/loyalty/award/retention/"
        ]
    }
