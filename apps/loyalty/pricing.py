"""Perks at checkout: the ``perk`` offer provider and counter source of the pricing layer
(docs/pricing.md, "Claims" and "Stacking" rule 3; docs/loyalty.md, "Perks and tiers").
Registered from ``LoyaltyConfig.ready``, as apps/geofences/pricing.py registers coupons.

A signed-in buyer's usable perks in the lines' shop (not used, not withdrawn, not expired
at the request's ``now``) apply at checkout, one of each kind per order (the best:
``best_perks``):

- ``percent_off``: a ``PERCENT_OFF`` offer on every line, applied last by the stacking
  policy (on what the lines cost after deals, bundles and a coupon);
- ``free_shipping``: a ``FREE_SHIPPING`` offer that waives the order's shipping fee (rule 5
  of apps/pricing/policy.py), used only by an order that pays a fee;
- ``early_access``: an ``Access`` (``registry.early_access``) that the streams app's deal
  provider asks for: a deal of the shop's drops is sold to the holder from ``minutes``
  before it opens, and the order that buys early uses the perk.

Anonymous quotes get no perk.

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
from apps.pricing.offers import Access, Context, Kind, Offer
from apps.pricing.registry import buyer_flag, counter_source, early_access, offer_provider
from creatorcommerce.errors import Conflict
from creatorcommerce.spine.events import emit
from creatorcommerce.spine.registry import handler
from creatorcommerce.sql import names

from .models import Award, Perk, PerkKind
from .perks import RELEASED, perk_order, perk_payload, usable_perks

PERK = "perk"
EARLY_ACCESS_FLAG = "perk_early_access"


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


def perk_label(*, kind: str, name: str | None, percent: Decimal | None = None) -> str:
    """What the receipt says: ``Superfan perk: 10% off``, ``Gold perk: free shipping``,
    ``Superfan perk: early access`` (the badge's or the tier's name)."""
    what = {
        PerkKind.PERCENT_OFF: f"{_percent_text(percent)}% off" if percent is not None else "percent off",
        PerkKind.FREE_SHIPPING: "free shipping",
        PerkKind.EARLY_ACCESS: "early access",
    }[kind]
    return f"{name or 'Loyalty'} perk: {what}"


# Of several usable perks of one kind, the one an order uses: the most generous (the
# highest percent; the most minutes of early access), then the first to expire, then the
# oldest (the query's order settles those ties).
_GENEROSITY = {PerkKind.PERCENT_OFF: "percent", PerkKind.FREE_SHIPPING: None, PerkKind.EARLY_ACCESS: "minutes"}


def best_perks(*, user_id: int, shop_id: int, now, kinds=(PerkKind.PERCENT_OFF, PerkKind.FREE_SHIPPING)) -> dict:
    """The usable perk of each of ``kinds`` that an order of ``user_id`` in ``shop_id`` gets
    (``{kind: row}``, rows with id, kind, percent, minutes and the name of the badge or tier
    it came from); one query."""
    rows = (
        usable_perks(user_id=user_id, now=now)
        .filter(shop_id=shop_id, kind__in=kinds)
        .order_by(F("expires_at").asc(nulls_last=True), "pk")  # no expiry: last
        .values("id", "kind", "percent", "minutes", "award__badge__name", "tier__name")
    )
    best: dict[str, dict] = {}
    for row in rows:  # a few per buyer and shop
        held, field = best.get(row["kind"]), _GENEROSITY[row["kind"]]
        if held is None or (field is not None and row[field] > held[field]):
            best[row["kind"]] = row
    return best


def best_perk(*, user_id: int, shop_id: int, now, kind: str = PerkKind.PERCENT_OFF) -> dict | None:
    """The usable perk of ``kind`` an order gets (see ``best_perks``), or None."""
    return best_perks(user_id=user_id, shop_id=shop_id, now=now, kinds=(kind,)).get(kind)


def _has_usable(kinds: tuple[str, ...], user_sql: str) -> tuple[str, dict]:
    n = names(Perk)
    params = {f"perk_kind_{kind}": kind for kind in kinds}
    listed = ", ".join(f"%({name})s" for name in params)
    return (
        # Identifiers from the model's meta; values are parameters.
        f"EXISTS (SELECT 1 FROM {n.table} lp WHERE lp.{n.user_id} = {user_sql} "  # noqa: S608
        f"AND lp.{n.kind} IN ({listed}) AND lp.{n.used_at} IS NULL AND lp.{n.withdrawn_at} IS NULL "
        f"AND (lp.{n.expires_at} IS NULL OR lp.{n.expires_at} > %(now)s))",
        params,
    )


@buyer_flag(PERK)
def has_usable_perk(user_sql: str) -> tuple[str, dict]:
    """Whether the buyer has any usable ``percent_off`` or ``free_shipping`` perk (any shop),
    selected by the buy's one read, so that a buyer without one costs the buy no query of
    ours."""
    return _has_usable((PerkKind.PERCENT_OFF, PerkKind.FREE_SHIPPING), user_sql)


@buyer_flag(EARLY_ACCESS_FLAG)
def has_early_access(user_sql: str) -> tuple[str, dict]:
    """Whether the buyer has any usable ``early_access`` perk (any shop): the deal provider
    looks for deals opening soon only for such a buyer (``registry.early_access``)."""
    return _has_usable((PerkKind.EARLY_ACCESS,), user_sql)


def _single_shop(lines) -> int | None:
    shop_ids = {line.shop_id for line in lines}
    return shop_ids.pop() if len(shop_ids) == 1 and None not in shop_ids else None


@offer_provider(PERK)
def perk_offers(*, buyer, lines, context: Context) -> list[Offer]:
    """The buyer's best ``percent_off`` perk as a percent off every line, and their
    ``free_shipping`` perk as a waiver of the shipping fee (applied, and used, only when the
    order pays one)."""
    if buyer is None or not getattr(buyer, "is_authenticated", False) or not lines:
        return []
    if context.buyer_flags is not None and not dict(context.buyer_flags).get(PERK, True):
        return []  # the buy's read found no usable perk of this buyer
    shop_id = _single_shop(lines)
    if shop_id is None:
        return []
    best = best_perks(user_id=buyer.pk, shop_id=shop_id, now=context.now or timezone.now())
    offers = []
    for kind, perk in sorted(best.items()):
        name = perk["award__badge__name"] or perk["tier__name"]
        offers.append(
            Offer(
                source=PERK,
                id=perk["id"],
                label=perk_label(kind=kind, name=name, percent=perk["percent"]),
                kind=Kind.PERCENT_OFF if kind == PerkKind.PERCENT_OFF else Kind.FREE_SHIPPING,
                value=perk["percent"] if kind == PerkKind.PERCENT_OFF else Decimal("0"),
                redeem=((PERK, perk["id"]),),
            )
        )
    return offers


@early_access(PERK)
def perk_early_access(*, buyer, shop_id: int, context: Context) -> Access | None:
    """The buyer's best ``early_access`` perk in ``shop_id``: deals of that shop's drops are
    theirs from ``minutes`` before they open to the public, once (the perk is used by the
    order that buys early)."""
    if context.buyer_flags is not None and not dict(context.buyer_flags).get(EARLY_ACCESS_FLAG, True):
        return None
    perk = best_perk(user_id=buyer.pk, shop_id=shop_id, now=context.now or timezone.now(), kind=PerkKind.EARLY_ACCESS)
    if perk is None:
        return None
    return Access(
        minutes=perk["minutes"],
        label=perk_label(kind=PerkKind.EARLY_ACCESS, name=perk["award__badge__name"] or perk["tier__name"]),
        redeem=((PERK, perk["id"]),),
    )


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
            # The revoke listed it as held by this reservation, not withdrawn: the
            # withdrawal is its own entry in the audit log (by no one: the release). Rare:
            # the shop is read here rather than joined (a join would lock its row too).
            audit_record(
                actor=None,
                action="perk.withdrawn",
                obj=perk,
                shop=perk.shop,
                details={
                    "award": perk.award_id,
                    "kind": perk.kind,
                    "order_released": perk_order(perk, statuses=RELEASED),
                    "why": "award revoked while a reservation held the perk; the reservation was released",
                },
            )
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
