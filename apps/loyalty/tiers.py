"""Tiers by spend (docs/loyalty.md, "Perks and tiers").

A viewer's **spend** in a shop is the total of their paid orders there (a refunded order
has status ``refunded`` and no longer counts), over their lifetime, or this calendar year
(from 1 January in the shop owner's time zone; by ``paid_at``). Each tier says which
(``Tier.period``). A viewer **reaches** a tier when their spend over its period is at
least its threshold and, for a tier that ``requires_badge``, they hold that badge (a
granted award). Their tier is the reached one with the highest threshold.

A tier's perk is granted once per viewer and tier, ever (the unique constraint on
``Perk(user, tier)``), when the ``order.placed`` handler finds the tier reached; every
tier reached gets its perk (a viewer who jumps two tiers gets both). ``tier_recheck``
withdraws the unused perks of tiers a viewer no longer reaches (a refund, a revoked badge);
reaching the tier again later grants nothing more.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from apps.accounts.models import Shop
from apps.orders.models import Order
from creatorcommerce.errors import DomainError
from creatorcommerce.spine.registry import handler

from .models import Award, Perk, Tier
from .perks import perk_new, perks_withdraw

ZERO = Decimal("0.00")


def year_start(*, shop: Shop, now: datetime) -> datetime:
    """1 January 00:00 of ``now``'s year in the shop owner's time zone."""
    try:
        tz = zoneinfo.ZoneInfo(shop.owner.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = zoneinfo.ZoneInfo("UTC")
    return datetime(now.astimezone(tz).year, 1, 1, tzinfo=tz)


def spend_of(*, user_id: int, shop: Shop, now: datetime) -> dict[str, Decimal]:
    """The viewer's spend in ``shop`` per period (``Tier.Period``): paid orders' totals;
    one query."""
    since = year_start(shop=shop, now=now)
    row = Order.objects.filter(buyer_id=user_id, shop=shop, status=Order.Status.PAID).aggregate(
        lifetime=Sum("total"), year=Sum("total", filter=Q(paid_at__gte=since, paid_at__lte=now))
    )
    return {
        Tier.Period.LIFETIME: (row["lifetime"] or ZERO).quantize(Decimal("0.01")),
        Tier.Period.CALENDAR_YEAR: (row["year"] or ZERO).quantize(Decimal("0.01")),
    }


@dataclass(frozen=True)
class Standing:
    """Where a viewer stands in a shop's tiers."""

    tiers: list[Tier]  # the shop's tiers, by threshold
    spend: dict[str, Decimal]  # per period
    reached: list[Tier]  # the tiers reached, by threshold
    held_badges: frozenset[int]  # ids of the required badges the viewer holds

    @property
    def tier(self) -> Tier | None:
        return self.reached[-1] if self.reached else None

    @property
    def next_tier(self) -> Tier | None:
        """The lowest tier above the viewer's tier that more spend would reach (one that
        requires a badge the viewer does not hold is skipped: spending does not reach it)."""
        floor = self.tier.threshold if self.tier is not None else None
        for tier in self.tiers:
            if floor is not None and tier.threshold <= floor:
                continue
            if tier in self.reached:
                continue
            if tier.requires_badge_id is not None and tier.requires_badge_id not in self.held_badges:
                continue
            return tier
        return None

    def shown_spend(self) -> Decimal:
        """The spend ``GET /me/loyalty/`` shows: over the next tier's period, else the
        viewer's tier's, else lifetime."""
        tier = self.next_tier or self.tier
        return self.spend[tier.period if tier is not None else Tier.Period.LIFETIME]


def standing(*, user_id: int, shop: Shop, now: datetime) -> Standing:
    """The viewer's spend, tiers reached and next tier in ``shop`` at ``now``; at most
    three queries (the tiers, the spend, the badges some tier requires)."""
    tiers = list(Tier.objects.filter(shop=shop).order_by("threshold", "pk"))
    if not tiers:
        return Standing([], {Tier.Period.LIFETIME: ZERO, Tier.Period.CALENDAR_YEAR: ZERO}, [], frozenset())
    spend = spend_of(user_id=user_id, shop=shop, now=now)
    required = {t.requires_badge_id for t in tiers if t.requires_badge_id is not None}
    held = (
        frozenset(
            Award.objects.filter(user_id=user_id, badge_id__in=required, status=Award.Status.GRANTED).values_list(
                "badge_id", flat=True
            )
        )
        if required
        else frozenset()
    )
    reached = [
        t
        for t in tiers
        if spend[t.period] >= t.threshold and (t.requires_badge_id is None or t.requires_badge_id in held)
    ]
    return Standing(tiers, spend, reached, held)


def loyalty_body(s: Standing) -> dict:
    """``GET /api/v1/me/loyalty/``'s answer."""
    tier, nxt = s.tier, s.next_tier
    spend = s.shown_spend()
    return {
        "tier": {"name": tier.name, "threshold": str(tier.threshold)} if tier is not None else None,
        "spend": str(spend),
        "next_tier": (
            {
                "name": nxt.name,
                "threshold": str(nxt.threshold),
                "spend_needed": str(max(nxt.threshold - s.spend[nxt.period], ZERO).quantize(Decimal("0.01"))),
            }
            if nxt is not None
            else None
        ),
    }


def tier_perks_grant(*, user_id: int, shop: Shop, now: datetime) -> list[Perk]:
    """Grant the perk of every tier ``user_id`` reaches in ``shop`` and did not get before
    (once per viewer and tier: a redelivered event, or two at once, grant nothing twice).
    Emits ``perk.granted`` for each. Returns the perks granted now."""
    s = standing(user_id=user_id, shop=shop, now=now)
    granted = []
    with transaction.atomic():
        for tier in s.reached:
            if not tier.perk_kind:
                continue
            perk = perk_new(grant=tier, user_id=user_id, shop_id=shop.pk, now=now, tier=tier)
            if perk is not None:
                granted.append(perk)
    return granted


def tier_recheck(*, user, shop, now) -> list[Perk]:
    """Withdraw ``user``'s unused perks of ``shop``'s tiers they no longer reach at ``now``
    (after a refund lowered their spend, or a revoke took a badge a tier requires); used
    ones stay as they are. Emits ``perk.withdrawn`` for each. Returns the withdrawn perks.
    Called on ``order.refunded`` and by the award revoke (docs/loyalty.md)."""
    user_id = getattr(user, "pk", user)
    if not isinstance(shop, Shop):
        shop = Shop.objects.select_related("owner").get(pk=shop)
    s = standing(user_id=user_id, shop=shop, now=now)
    reached = [t.pk for t in s.reached]
    with transaction.atomic():
        perks = Perk.objects.filter(user_id=user_id, shop=shop, tier__isnull=False).exclude(tier_id__in=reached)
        withdrawn, _used = perks_withdraw(perks=perks, now=now)
    return withdrawn


def _shop(shop_id: int) -> Shop | None:
    return Shop.objects.select_related("owner").filter(pk=shop_id).first()


@handler("order.placed", name="apps.loyalty.tiers.tier_perks_on_order")
def tier_perks_on_order(event):
    """A paid order may take its buyer into a tier: grant that tier's perk (once)."""
    shop = _shop(event.payload["shop"])
    if shop is not None:
        tier_perks_grant(user_id=event.payload["buyer"], shop=shop, now=timezone.now())


@handler("order.refunded", name="apps.loyalty.tiers.tier_recheck_on_refund")
def tier_recheck_on_refund(event):
    """A refund lowers the buyer's spend: withdraw unused perks of tiers now out of reach."""
    buyer_id = Order.objects.filter(pk=event.payload["order"]).values_list("buyer_id", flat=True).first()
    shop = _shop(event.payload["shop"])
    if buyer_id is not None and shop is not None:
        tier_recheck(user=buyer_id, shop=shop, now=timezone.now())


TIER_FIELDS = (
    "name",
    "threshold",
    "period",
    "requires_badge",
    "perk_kind",
    "perk_percent",
    "perk_minutes",
    "perk_valid_days",
)


class TierInvalid(DomainError):
    code = "invalid"
    message = "The tier is not valid."


def tier_errors(*, shop, fields: dict, tier: Tier | None = None) -> dict[str, list[str]]:
    """What is wrong with ``fields`` for a tier of ``shop`` (``tier``: the one changed)."""
    from .badges import perk_errors

    errors: dict[str, list[str]] = {}
    name = (fields.get("name") or "").strip()
    others = Tier.objects.filter(shop=shop).exclude(pk=getattr(tier, "pk", None))
    if not name:
        errors.setdefault("name", []).append("Name the tier.")
    elif others.filter(name=name).exists():
        errors.setdefault("name", []).append("Your shop has a tier of this name already.")
    threshold = fields.get("threshold")
    if threshold is None or threshold < 0:
        errors.setdefault("threshold", []).append("Give the spend (0 or more) from which a viewer is in this tier.")
    elif others.filter(threshold=threshold).exists():
        errors.setdefault("threshold", []).append("Another tier of your shop starts at this spend.")
    badge = fields.get("requires_badge")
    if badge is not None and badge.shop_id != shop.pk:
        errors.setdefault("requires_badge", []).append("Choose one of your own badges.")
    for field, message in perk_errors(fields).items():
        errors.setdefault(field, []).append(message)
    return errors


def tier_save(*, shop, tier: Tier | None = None, **fields) -> Tier:
    """Create (``tier`` None) or change a spend tier of ``shop``. Raises TierInvalid (with
    ``fields``) and writes nothing when a field is wrong. Standings follow from spend when
    they are read; a tier's perk is granted when a viewer next reaches it (``order.placed``)."""
    unknown = set(fields) - set(TIER_FIELDS)
    if unknown:
        raise TypeError(f"tier_save() got unexpected fields {sorted(unknown)}")
    current = {name: getattr(tier, name) for name in TIER_FIELDS} if tier is not None and tier.pk else {}
    merged = {**current, **fields}
    errors = tier_errors(shop=shop, fields=merged, tier=tier)
    if errors:
        raise TierInvalid(fields=errors)
    with transaction.atomic():
        if tier is None or tier.pk is None:
            tier = tier or Tier(shop=shop)
            tier.shop = shop
        else:
            tier = Tier.objects.select_for_update().get(pk=tier.pk, shop=shop)
        for name, value in fields.items():
            setattr(tier, name, value.strip() if name == "name" and isinstance(value, str) else value)
        tier.save()
    return tier
