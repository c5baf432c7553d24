"""Shared set-up for the moderation tests (no tests here): a shop's badge, awards in each
state, and perks as the perks module grants them (rows of the Perk model)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from apps.loyalty.models import Award, Badge, Perk, PerkKind
from tests.factories import CreatorFactory, UserFactory

NOW = datetime(2026, 3, 6, 20, 0, tzinfo=UTC)


def make_badge(shop=None, *, name="Early bird", needs_review=False, perk=True, stream=None) -> Badge:
    shop = shop or CreatorFactory().shop
    fields = {"perk_kind": PerkKind.PERCENT_OFF, "perk_percent": Decimal("10.00")} if perk else {}
    return Badge.objects.create(
        shop=shop, name=name, rule=Badge.Rule.FIRST_BUYERS, count=10, needs_review=needs_review, stream=stream, **fields
    )


def make_award(badge=None, *, user=None, status=Award.Status.GRANTED, stream=None, scope="") -> Award:
    badge = badge or make_badge()
    return Award.objects.create(
        badge=badge, user=user or UserFactory(), scope=scope, status=status, stream=stream, awarded_at=NOW
    )


def make_perk(award, *, used=False, kind=PerkKind.PERCENT_OFF) -> Perk:
    return Perk.objects.create(
        user=award.user,
        shop=award.badge.shop,
        kind=kind,
        percent=Decimal("10.00") if kind == PerkKind.PERCENT_OFF else None,
        award=award,
        granted_at=NOW,
        used_at=NOW if used else None,
    )
