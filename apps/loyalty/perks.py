"""Perks: granted with a badge's award (or a tier, apps/loyalty/tiers.py), used once at
checkout (apps/loyalty/pricing.py), withdrawn when their award is revoked (docs/loyalty.md,
"Perks and tiers").

A perk is *usable* while it is not used, not withdrawn and not expired
(``expires_at IS NULL OR expires_at > now``). Used perks are never withdrawn: what a viewer
already got stays recorded (``used_at``, ``order``).
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from apps.orders.models import Order
from creatorcommerce.spine.events import emit

from .models import Award, Perk, PerkGrant

RELEASED = (Order.Status.DECLINED, Order.Status.EXPIRED, Order.Status.FAILED)


def usable_perks(*, user_id: int, now) -> QuerySet[Perk]:
    """The perks ``user_id`` can use at ``now`` (any shop)."""
    return Perk.objects.filter(user_id=user_id, used_at__isnull=True, withdrawn_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def perks_listed(*, user) -> QuerySet[Perk]:
    """``GET /api/v1/me/perks/``: the viewer's perks, newest first; withdrawn ones are not
    listed (used and expired ones are)."""
    return Perk.objects.filter(user=user, withdrawn_at__isnull=True).order_by("-granted_at", "-pk")


def perk_body(perk: Perk) -> dict:
    return {
        "id": perk.pk,
        "kind": perk.kind,
        "award": perk.award_id,
        "used_at": perk.used_at,
        "expires_at": perk.expires_at,
    }


def perk_payload(perk: Perk) -> dict:
    """``perk.withdrawn``'s payload (``perk.granted`` adds kind and expiry)."""
    return {"perk": perk.pk, "user": perk.user_id, "shop": perk.shop_id, "award": perk.award_id, "tier": perk.tier_id}


def _granted_payload(perk: Perk) -> dict:
    return {**perk_payload(perk), "kind": perk.kind, "expires_at": perk.expires_at}


def perk_new(*, grant: PerkGrant, user_id: int, shop_id: int, now, award=None, tier=None) -> Perk | None:
    """Create the perk ``grant`` (a badge or a tier) gives, once: the unique constraints on
    ``Perk.award`` and on ``(user, tier)`` make a second grant (a redelivered event, two
    handlers at once) a no-op. Emits ``perk.granted``. Returns the new perk, or None when
    the grant gives no perk or it was granted before. Precondition: inside
    ``transaction.atomic()``."""
    if not grant.perk_kind:
        return None
    perk = Perk(
        user_id=user_id,
        shop_id=shop_id,
        kind=grant.perk_kind,
        percent=grant.perk_percent if grant.perk_kind == "percent_off" else None,
        minutes=grant.perk_minutes if grant.perk_kind == "early_access" else None,
        award=award,
        tier=tier,
        granted_at=now,
        expires_at=now + timedelta(days=grant.perk_valid_days) if grant.perk_valid_days else None,
    )
    try:
        with transaction.atomic():  # a savepoint: the duplicate's IntegrityError leaves the caller's transaction usable
            perk.save(force_insert=True)
    except IntegrityError:
        return None
    emit("perk.granted", _granted_payload(perk), groups=[f"shop.{shop_id}"])
    return perk


def perks_grant_for_award(*, award: Award, now) -> list[Perk]:
    """Grant the perk of ``award``'s badge (its ``perk_*`` fields) to the award's viewer in
    the badge's shop, valid for ``perk_valid_days`` from ``now`` (no expiry when empty).

    Only a granted award gets a perk (a pending one waits for its approval, a revoked one
    gets none). Idempotent: one perk per award (a unique constraint), so a second call,
    sequential or concurrent, grants nothing. Returns the perks this call granted (none on
    a repeat, or when the badge grants no perk); emits ``perk.granted`` for each."""
    if award.status != Award.Status.GRANTED:
        return []
    badge = award.badge
    with transaction.atomic():
        perk = perk_new(grant=badge, user_id=award.user_id, shop_id=badge.shop_id, now=now, award=award)
    return [perk] if perk is not None else []


def perks_withdraw(*, perks: QuerySet[Perk], now) -> tuple[list[Perk], list[Perk]]:
    """Withdraw the unused ones of ``perks`` (not withdrawn before); leave the used ones.
    Locks the perks' rows (by id) first, so a buy taking one at this moment either took it
    before (it is used) or finds it withdrawn. Returns (withdrawn, used). Emits
    ``perk.withdrawn`` for each withdrawn one. Precondition: inside ``transaction.atomic()``."""
    rows = list(perks.filter(withdrawn_at__isnull=True).select_for_update().order_by("pk"))
    withdrawn = [p for p in rows if p.used_at is None]
    used = [p for p in rows if p.used_at is not None]
    if withdrawn:
        Perk.objects.filter(pk__in=[p.pk for p in withdrawn]).update(withdrawn_at=now)
        for perk in withdrawn:
            perk.withdrawn_at = now
            emit("perk.withdrawn", perk_payload(perk), groups=[f"shop.{perk.shop_id}"])
    return withdrawn, used


def perks_withdraw_for_award(*, award: Award, now) -> tuple[list[Perk], list[Perk]]:
    """Withdraw ``award``'s unused perks (a revoke): each gets ``withdrawn_at = now`` and a
    ``perk.withdrawn`` event. Used ones are kept as they are (recorded, not clawed back).
    Returns (withdrawn, used); a second call withdraws nothing more.

    A perk held by a reservation not paid yet counts as used here; if that reservation is
    released later, the release sees the revoked award and withdraws the perk instead of
    making it usable again (``pricing.PerkCounter.give_back``)."""
    with transaction.atomic():
        return perks_withdraw(perks=Perk.objects.filter(award=award), now=now)


def perk_order(perk: Perk, *, statuses) -> int | None:
    """The newest order of ``perk``'s buyer in its shop, with a status in ``statuses``, that
    took the perk (``Order.redemptions`` holds ``perk:<id>``: apps/loyalty/pricing.py's
    counter source). A perk is taken by one order at a time, so with ``RESERVED`` this is
    the reservation holding it now, and with ``RELEASED`` inside a release, the order
    being released. Reads at most 50 orders of one buyer (by the buyer's index)."""
    key = f"perk:{perk.pk}"
    rows = (
        Order.objects.filter(buyer_id=perk.user_id, shop_id=perk.shop_id, status__in=list(statuses))
        .order_by("-pk")
        .values_list("pk", "redemptions")[:50]
    )
    return next((pk for pk, redemptions in rows if key in (redemptions or [])), None)


def perk_held_by(perk: Perk) -> int | None:
    """The reserved, not yet paid, order holding ``perk``, if any. Such a perk has its
    ``used_at`` but no ``order`` (set once the order is paid): it is not used for good yet,
    and a release gives it back (or, if its award was revoked meanwhile, withdraws it)."""
    if perk.used_at is None or perk.order_id is not None or perk.withdrawn_at is not None:
        return None
    return perk_order(perk, statuses=[Order.Status.RESERVED])
