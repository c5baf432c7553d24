"""The loyalty app's demo step (docs/loyalty.md): two badges of the demo drop, "Early
supporter" (the first 1,000 buyers, no review) and "Superfan" (any buy in the drop, needs
review, grants 10 % off the next order); two lifetime tiers, "Silver" from 50.00 and
"Gold" from 200.00 (15 % off the next order); and three demo fans with awards, some granted and some
pending, so staff see a real queue at /admin/loyalty/award/?status__exact=pending.

Awards go through ``awards.award_create`` as the rules' handlers would (a badge that needs
review leaves its award pending). The demo viewer gets none here: their first buy in the
drop earns both badges live. Running it twice changes nothing that is already there.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from apps.accounts.demo import demo_user

from .awards import award_create
from .badges import badge_save
from .models import Award, Badge, PerkKind, Tier
from .tiers import tier_save

EARLY_SUPPORTER = "Early supporter"
SUPERFAN = "Superfan"
# "Any buy in the demo drop": the first N buyers with an N no drop reaches.
ANY_BUYER = 1_000_000
DEMO_FANS = {
    "fan1@demo.local": ("Demo Fan One", [EARLY_SUPPORTER, SUPERFAN]),
    "fan2@demo.local": ("Demo Fan Two", [EARLY_SUPPORTER, SUPERFAN]),
    "fan3@demo.local": ("Demo Fan Three", [SUPERFAN]),
}
DEMO_TIERS = [
    ("Silver", Decimal("50.00"), {}),
    ("Gold", Decimal("200.00"), {"perk_kind": PerkKind.PERCENT_OFF, "perk_percent": Decimal("15.00")}),
]


def _badge(shop, stream, name: str, **fields) -> Badge:
    badge = Badge.objects.filter(shop=shop, name=name).first()
    if badge is None:
        return badge_save(shop=shop, name=name, stream=stream, **fields)
    if badge.stream_id != stream.pk:  # the last demo drop ended; a re-seed made a new one
        badge = badge_save(shop=shop, badge=badge, stream=stream)
    return badge


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
    }
    for name, threshold, perk in DEMO_TIERS:
        if not Tier.objects.filter(shop=shop, name=name).exists():
            tier_save(shop=shop, name=name, threshold=threshold, period=Tier.Period.LIFETIME, **perk)

    scope = f"stream:{stream.pk}"
    for email, (display_name, names) in DEMO_FANS.items():
        fan = demo_user(email, display_name)
        for name in names:
            badge = badges[name]
            if not Award.objects.filter(badge=badge, user=fan, scope=scope).exists():
                award_create(badge=badge, user=fan, scope=scope, stream_id=stream.pk, now=now)

    pending = Award.objects.filter(badge__shop=shop, status=Award.Status.PENDING).count()
    return {
        "badges": badges,
        "summary": [
            f"badges {EARLY_SUPPORTER!r} and {SUPERFAN!r} (needs review, 10 % off) on the demo drop, tiers Silver "
            f"and Gold; {pending} award(s) pending review at /admin/loyalty/award/?status__exact=pending; "
            "retention chart at /admin/loyalty/award/retention/"
        ],
    }
