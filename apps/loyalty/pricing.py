"""Perks at checkout: the ``perk`` offer provider and counter source of the pricing layer
(docs/pricing.md, "Claims" and "Stacking" rule 3; docs/loyalty.md, "Perks and tiers").
Registered from ``LoyaltyConfig.ready``, as apps/geofences/pricing.py registers coupons.

A signed-in buyer's usable ``percent_off`` perk in the lines' shop (not used, not
withdrawn, not expired at the request's ``now``) is one ``PERCENT_OFF`` offer on every
line, applied last by the stacking policy (on what the lines cost after deals, bundles and
a coupon). Of several, only the best applies to an order: the highest percent, then the
one that expires first, then the oldest. Anonymous quotes get no perk. ``free_shipping``
and ``early_access`` perks are not applied at checkout (not built yet).

The offer names its single use (``Offer.redeem``: ``("perk", id)``), which the buy takes as
a counter claim in its one statement (locked first, taken last): of many concurrent buys
with one perk exactly one gets it, and the others answer 409 ``perk_used`` (the buy charges
what it priced, so a buy whose perk went meanwhile is refused, never charged more; a retry
prices again, without the perk). A released reservation gives the perk back; the paid
order's ``order.placed`` handler records the order on the perk (``perk.used``, an audit
entry).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.audit.services import audit_record
from apps.pricing.claims import SingleUseCounter
from apps.pricing.offers import Context, Kind, Offer
from apps.pricing.registry import buyer_flag, counter_source, offer_provider
from creatorcommerce.errors import Conflict
from creatorcommerce.spine.events import emit
from creatorcommerce.spine.registry import handler
from creatorcommerce.sql import names

from .models import Award, Perk, PerkKind
from .perks import perk_payload, usable_perks

PERK = "perk"


class PerkUsed(Conflict):
    code = "perk_used"
    message = "Your perk was used by another order meanwhile; buy again to pay the price without it."


class PerkWithdrawn(Conflict):
    code = "perk_withdrawn"
    message = "Your perk was withdrawn meanwhile; buy again to pay the price without it."


class PerkExpired(Conflict):
    code = "perk_expired"
    message = "Your perk expired meanwhile; buy again to pay the price without it."


def _percent_text(percent: Decimal) -> str:
    text = f"{percent:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def perk_label(*, percent: Decimal, name: str | None) -> str:
    """What the receipt says: ``Superfan perk: 10% off`` (the badge's or the tier's name)."""
    return f"{name or 'Loyalty'} perk: {_percent_text(percent)}% off"


def best_perk(*, user_id: int, shop_id: int, now) -> dict | None:
    """The usable ``percent_off`` perk of ``user_id`` in ``shop_id`` that an order gets (the
    highest percent, then the first to expire, then the oldest), with the name of the badge
    or tier it came from; one query."""
    return (
        usable_perks(user_id=user_id, now=now)
        .filter(shop_id=shop_id, kind=PerkKind.PERCENT_OFF)
        .order_by("-percent", F("expires_at").asc(nulls_last=True), "pk")  # no expiry: last
        .values("id", "percent", "award__badge__name", "tier__name")
        .first()
    )


@buyer_flag(PERK)
def has_usable_perk(user_sql: str) -> tuple[str, dict]:
    """Whether the buyer has any usable ``percent_off`` perk (any shop), selected by the
    buy's one read, so that a buyer without one costs the buy no query of ours."""
    n = names(Perk)
    return (
        # Identifiers from the model's meta; values are parameters.
        f"EXISTS (SELECT 1 FROM {n.table} lp WHERE lp.{n.user_id} = {user_sql} "  # noqa: S608
        f"AND lp.{n.kind} = %(perk_kind)s AND lp.{n.used_at} IS NULL AND lp.{n.withdrawn_at} IS NULL "
        f"AND (lp.{n.expires_at} IS NULL OR lp.{n.expires_at} > %(now)s))",
        {"perk_kind": PerkKind.PERCENT_OFF},
    )


@offer_provider(PERK)
def perk_offers(*, buyer, lines, context: Context) -> list[Offer]:
    if buyer is None or not getattr(buyer, "is_authenticated", False) or not lines:
        return []
    if context.buyer_flags is not None and not dict(context.buyer_flags).get(PERK, True):
        return []  # the buy's read found no usable perk of this buyer
    shop_ids = {line.shop_id for line in lines}
    if len(shop_ids) != 1 or None in shop_ids:
        return []
    now = context.now or timezone.now()
    perk = best_perk(user_id=buyer.pk, shop_id=shop_ids.pop(), now=now)
    if perk is None:
        return []
    return [
        Offer(
            source=PERK,
            id=perk["id"],
            label=perk_label(percent=perk["percent"], name=perk["award__badge__name"] or perk["tier__name"]),
            kind=Kind.PERCENT_OFF,
            value=perk["percent"],
            redeem=((PERK, perk["id"]),),
        )
    ]


@counter_source(PERK)
class PerkCounter(SingleUseCounter):
    """A perk's single use: taken while it is the buyer's, unused, not withdrawn and not
    expired; taking it sets ``used_at``."""

    model, used = Perk, "used_at"

    def usable(self, n) -> str:
        return f"{n.withdrawn_at} IS NULL AND ({n.expires_at} IS NULL OR {n.expires_at} > %s)"

    def refused(self, *, id: int, now):
        perk = Perk.objects.filter(pk=id).values("used_at", "withdrawn_at", "expires_at").first()
        if perk is not None and perk["used_at"] is None:
            if perk["withdrawn_at"] is not None:
                raise PerkWithdrawn()
            if perk["expires_at"] is not None and perk["expires_at"] <= now:
                raise PerkExpired()
        raise PerkUsed()

    def give_back(self, *, id: int) -> list[tuple[str, dict, list]]:
        """A released reservation's perk back (usable again, ``perk.returned``); but a perk
        whose award was revoked meanwhile is withdrawn instead (``perk.withdrawn``): the
        revoke counted it as used while the reservation held it."""
        perk = Perk.objects.select_for_update().filter(pk=id).first()
        if perk is None or perk.used_at is None or perk.order_id is not None:
            return []
        revoked = (
            perk.award_id is not None
            and Award.objects.filter(pk=perk.award_id, status=Award.Status.REVOKED).exists()
            and perk.withdrawn_at is None
        )
        if revoked:
            now = timezone.now()
            Perk.objects.filter(pk=id).update(used_at=None, withdrawn_at=now)
            return [("perk.withdrawn", perk_payload(perk), [f"shop.{perk.shop_id}"])]
        Perk.objects.filter(pk=id).update(used_at=None)
        return [
            ("perk.returned", {"perk": perk.pk, "user": perk.user_id, "shop": perk.shop_id}, [f"shop.{perk.shop_id}"])
        ]


@handler("order.placed", name="apps.loyalty.pricing.perk_redeemed")
def perk_redeemed(event):
    """Record the paid order on the perk it used (``Order.redemptions``: ``perk:<id>``),
    emit ``perk.used`` and write the audit entry of the use. Idempotent: a perk that names
    its order already is left alone."""
    from apps.orders.models import Order

    order_id = event.payload["order"]
    order = Order.objects.select_related("buyer").filter(pk=order_id).only("id", "redemptions", "buyer").first()
    if order is None:
        return
    ids = [int(target) for source, _, target in (r.partition(":") for r in order.redemptions or []) if source == PERK]
    if not ids:
        return
    with transaction.atomic():
        for perk in Perk.objects.select_related("shop").filter(pk__in=ids, order__isnull=True).order_by("pk"):
            if not Perk.objects.filter(Q(pk=perk.pk) & Q(order__isnull=True)).update(order_id=order_id):
                continue
            emit(
                "perk.used",
                {"perk": perk.pk, "user": perk.user_id, "shop": perk.shop_id, "order": order_id},
                groups=[f"shop.{perk.shop_id}"],
            )
            audit_record(
                actor=order.buyer,
                action="perk.used",
                obj=perk,
                shop=perk.shop,
                details={
                    "order": order_id,
                    "kind": perk.kind,
                    "percent": str(perk.percent) if perk.percent is not None else None,
                    "award": perk.award_id,
                    "tier": perk.tier_id,
                },
            )
