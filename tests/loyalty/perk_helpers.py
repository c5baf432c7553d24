"""Helpers of the perk and tier tests: a badge with a perk, an award granted through
``perks_grant_for_award``, tiers, a buy at a controlled moment."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

from apps.loyalty.models import Award, Badge, Tier
from apps.loyalty.perks import perks_grant_for_award
from apps.orders.services import order_place, request_fingerprint

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
_keys = itertools.count()


def make_badge(
    shop, *, name=None, percent="10.00", kind="percent_off", valid_days=None, perk_minutes=15, **fields
) -> Badge:
    return Badge.objects.create(
        shop=shop,
        name=name or f"Superfan {next(_keys)}",
        rule=Badge.Rule.REPEAT,
        count=1,
        perk_kind=kind,
        perk_percent=Decimal(percent) if kind == "percent_off" else None,
        perk_minutes=perk_minutes if kind == "early_access" else None,
        perk_valid_days=valid_days,
        **fields,
    )


def make_award(badge, user, *, status=Award.Status.GRANTED, at=T0) -> Award:
    return Award.objects.create(badge=badge, user=user, status=status, awarded_at=at)


def grant_perk(badge, user, *, at=T0):
    """An award of ``badge`` to ``user`` with its perk: (award, perk)."""
    award = make_award(badge, user, at=at)
    (perk,) = perks_grant_for_award(award=award, now=at)
    return award, perk


def make_tier(shop, name, threshold, *, period=Tier.Period.LIFETIME, percent=None, requires_badge=None) -> Tier:
    return Tier.objects.create(
        shop=shop,
        name=name,
        threshold=Decimal(threshold),
        period=period,
        perk_kind="percent_off" if percent else "",
        perk_percent=Decimal(percent) if percent else None,
        requires_badge=requires_badge,
    )


def buy(buyer, lines, *, now=T0, key=None, shop=None):
    """``order_place`` at ``now``: (status, body)."""
    key = key or f"perk-buy-{next(_keys):06d}"
    body = {"lines": [{"sku": c, "quantity": q} for c, q in lines]}
    outcome = order_place(
        buyer=buyer,
        lines=lines,
        shop_slug=shop.slug if shop else None,
        idempotency_key=key,
        fingerprint=request_fingerprint(body),
        now=now,
    )
    return outcome.status, outcome.body
