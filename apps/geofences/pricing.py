"""Running-time coupons in the pricing layer: the ``coupon`` offer provider and the two
counters a redemption consumes (docs/geofences.md; docs/pricing.md, "Claims").
Registered from ``GeofencesConfig.ready``.

A buy or quote naming ``"coupon": code`` gets one ``coupon`` offer (percent or amount off,
on its SKU or the whole shop) valued at the request's ``now``, or a refusal: an unknown
code gives no offer (the pricing layer answers 404 ``coupon_not_found``); someone else's
coupon, or any coupon for an anonymous quote, 403 ``coupon_not_yours``; a used one 409
``coupon_used``; an expired one 409 ``coupon_expired``; one of another shop than the
lines', or a SKU coupon whose SKU is not among them, 409 ``coupon_not_applicable``; one
whose offer's cap is used up, 409 ``coupon_cap_reached``. An issued coupon is honoured
until it expires whatever its offer does later (ended, deactivated), except the cap.

The offer names what it redeems (``Offer.redeem``): the coupon's single use (counter
``coupon``) and, for a capped offer, one of its redemptions (counter ``geo_offer``). The
buy takes both as claims in its one statement (locked first, taken last), so of many
concurrent buys with one coupon exactly one gets it, and a cap is never exceeded.
"""

from __future__ import annotations

from django.db.models import F
from django.db.models.functions import Least
from django.utils import timezone

from apps.pricing.claims import SingleUseCounter
from apps.pricing.offers import Context, Kind, Offer
from apps.pricing.registry import counter_source, offer_provider
from creatorcommerce.sql import after_gate, names

from .coupons import coupon_event_payload, coupon_value
from .exceptions import CouponCapReached, CouponExpired, CouponNotApplicable, CouponNotYours, CouponUsed
from .models import Coupon, GeoOffer

COUPON = "coupon"
GEO_OFFER = "geo_offer"
KINDS = {GeoOffer.Kind.PERCENT: Kind.PERCENT_OFF, GeoOffer.Kind.AMOUNT: Kind.AMOUNT_OFF}


def coupon_offer(coupon: Coupon, *, now) -> Offer:
    """The coupon as an offer of the pricing layer, valued at ``now``."""
    offer = coupon.offer
    redeem = ((COUPON, coupon.pk),) + (((GEO_OFFER, offer.pk),) if offer.redemptions_left is not None else ())
    return Offer(
        source=COUPON,
        id=coupon.pk,
        label=offer.label,
        kind=KINDS[offer.kind],
        value=coupon_value(coupon, now=now),
        sku_id=offer.sku_id,
        redeem=redeem,
    )


def coupon_refusal(coupon: Coupon, *, buyer, now) -> Exception | None:
    """Why ``buyer`` cannot use ``coupon`` at ``now`` (checked in this order), or None."""
    if buyer is None or not getattr(buyer, "is_authenticated", False) or coupon.user_id != buyer.pk:
        return CouponNotYours()
    if coupon.redeemed_at is not None:
        return CouponUsed()
    if coupon.expires_at <= now:
        return CouponExpired()
    if coupon.offer.redemptions_left is not None and coupon.offer.redemptions_left <= 0:
        return CouponCapReached()
    return None


@offer_provider(COUPON)
def coupon_offers(*, buyer, lines, context: Context) -> list[Offer]:
    if not context.coupon:
        return []
    coupon = Coupon.objects.select_related("offer").filter(code=context.coupon.strip().upper()).first()
    if coupon is None:
        return []  # the pricing layer answers coupon_not_found
    now = context.now or timezone.now()
    refusal = coupon_refusal(coupon, buyer=buyer, now=now)
    if refusal is not None:
        raise refusal
    offer = coupon.offer
    if {line.shop_id for line in lines} != {offer.shop_id} or (
        offer.sku_id is not None and offer.sku_id not in {line.sku_id for line in lines}
    ):
        raise CouponNotApplicable()
    return [coupon_offer(coupon, now=now)]


@counter_source(COUPON)
class CouponCounter(SingleUseCounter):
    """A coupon's single use: taken while it is the buyer's, unused and not expired."""

    model, used = Coupon, "redeemed_at"

    def usable(self, n) -> str:
        return f"{n.expires_at} > %s"

    def refused(self, *, id: int, now):
        coupon = Coupon.objects.filter(pk=id).values("redeemed_at", "expires_at").first()
        if coupon is not None and coupon["redeemed_at"] is None and coupon["expires_at"] <= now:
            raise CouponExpired()
        raise CouponUsed()

    def give_back(self, *, id: int) -> list[tuple[str, dict, list]]:
        coupon = Coupon.objects.select_for_update().select_related("offer").filter(pk=id).first()
        if coupon is None or coupon.redeemed_at is None:
            return []
        Coupon.objects.filter(pk=id).update(redeemed_at=None, order=None)
        return [("coupon.returned", coupon_event_payload(coupon), [f"shop.{coupon.offer.shop_id}"])]


@counter_source(GEO_OFFER)
class GeoOfferCounter:
    """One of a capped geo offer's redemptions."""

    @property
    def column(self) -> str:
        return names(GeoOffer).id

    def lock_statement(self, *, id: int, buyer_id: int, now, after: str | None) -> tuple[str, list]:
        n = names(GeoOffer)
        return (
            f"SELECT {n.id} FROM {n.table} WHERE {n.id} = %s AND {n.redemptions_left} > 0{after_gate(after)} "  # noqa: S608
            "FOR UPDATE",
            [id],
        )

    def take_statement(self, *, id: int, buyer_id: int, now, after: str | None) -> tuple[str, list]:
        n = names(GeoOffer)
        return (
            f"UPDATE {n.table} SET {n.redemptions_left} = {n.redemptions_left} - 1 "  # noqa: S608
            f"WHERE {n.id} = %s AND {n.redemptions_left} > 0{after_gate(after)} RETURNING {n.id}",
            [id],
        )

    def refused(self, *, id: int, now):
        raise CouponCapReached()

    def give_back(self, *, id: int) -> list[tuple[str, dict, list]]:
        """One redemption back, but never above what the cap leaves: the cap less the
        coupons still redeemed (``geo_offer_save``'s rule). A cap lowered below what was
        redeemed while a reservation held one leaves 0, and the release must not make it 1.
        The order's coupon was given back just before (``coupon`` sorts before
        ``geo_offer`` in ``counters_give_back``), so it is not counted; the offer's row is
        locked first, and a buy takes its coupon only with that lock, so the count is
        exact."""
        offer = GeoOffer.objects.select_for_update().filter(pk=id, cap__isnull=False).first()
        if offer is None or offer.redemptions_left is None:
            return []
        used = Coupon.objects.filter(offer_id=id, redeemed_at__isnull=False).count()
        GeoOffer.objects.filter(pk=id).update(
            redemptions_left=Least(F("redemptions_left") + 1, max(offer.cap - used, 0))
        )
        return []
