"""Running-time coupons: issuing them and what they are worth at a moment
(docs/geofences.md, "Running-time coupons").

A geo offer gives each viewer who enters (or dwells at) its venue one coupon while the
offer runs and its cap lasts. The coupon's value runs down linearly from the offer's
``start_value`` to its ``end_value`` over ``decay_minutes`` after issue, stepping once a
whole minute has passed, and the coupon expires ``expires_minutes`` after issue:

    value(t) = start - (start - end) * min(k, N) / N,  k = whole minutes since issue

rounded half up to the cent (N = 0: always ``start``). A quote and the buy right after it
value the coupon at the same request's ``now`` (apps.pricing.offers.Context.now), and the
value only changes on a minute boundary, so they agree.

Writes (``coupons_issue``, ``geo_offer_save``) emit their events; reads
(``coupon_value``, ``coupon_body``, ``coupons_of_user``) write nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.db.models import Q

from creatorcommerce.fields import iso_utc
from creatorcommerce.spine.events import emit

from .fence_cache import invalidate_on_commit
from .models import Coupon, GeoOffer

CENTS = Decimal("0.01")
ZERO = Decimal("0.00")


def running_value(*, start: Decimal, end: Decimal, decay_minutes: int, minutes: int) -> Decimal:
    """The formula above for ``minutes`` (k) whole minutes since issue."""
    if decay_minutes <= 0:
        return Decimal(start).quantize(CENTS, rounding=ROUND_HALF_UP)
    k = min(max(minutes, 0), decay_minutes)
    value = Decimal(start) - (Decimal(start) - Decimal(end)) * k / decay_minutes
    return value.quantize(CENTS, rounding=ROUND_HALF_UP)


def whole_minutes(*, since: datetime, now: datetime) -> int:
    """Whole minutes from ``since`` to ``now`` (0 before ``since``)."""
    seconds = (now - since).total_seconds()
    return max(int(seconds // 60), 0)


def coupon_value(coupon: Coupon, *, now: datetime) -> Decimal:
    """What ``coupon`` takes off at ``now`` by the formula (expiry and use not considered:
    see ``coupon_value_now``)."""
    offer = coupon.offer
    return running_value(
        start=offer.start_value,
        end=offer.end_value,
        decay_minutes=offer.decay_minutes,
        minutes=whole_minutes(since=coupon.issued_at, now=now),
    )


def coupon_value_now(coupon: Coupon, *, now: datetime) -> Decimal:
    """The value ``GET /api/v1/me/coupons/`` shows: 0.00 once the coupon is used or
    expired (it takes nothing off any more), else ``coupon_value``."""
    if coupon.redeemed_at is not None or coupon.expires_at <= now:
        return ZERO
    return coupon_value(coupon, now=now)


def next_value_at(coupon: Coupon, *, now: datetime) -> datetime | None:
    """When the value next steps down; None when it will not any more (constant, run down
    to its end value, used or expired)."""
    offer = coupon.offer
    if coupon.redeemed_at is not None or coupon.expires_at <= now or offer.decay_minutes <= 0:
        return None
    if offer.start_value == offer.end_value:
        return None
    k = whole_minutes(since=coupon.issued_at, now=now)
    if k >= offer.decay_minutes:
        return None
    at = coupon.issued_at + timedelta(minutes=k + 1)
    return at if at < coupon.expires_at else None


def coupon_body(coupon: Coupon, *, now) -> dict:
    """An item of ``GET /api/v1/me/coupons/`` (and of a ping's ``coupons``): ``value_now``
    is a percentage for ``percent`` coupons, an amount in the shop's currency for
    ``amount`` ones; 0.00 once used or expired."""
    offer = coupon.offer
    return {
        "code": coupon.code,
        "label": offer.label,
        "sku": offer.sku.code if offer.sku_id is not None else None,
        "kind": offer.kind,
        "value_now": str(coupon_value_now(coupon, now=now)),
        "next_value_at": iso_utc(at) if (at := next_value_at(coupon, now=now)) else None,
        "expires_at": iso_utc(coupon.expires_at),
        "redeemed_at": iso_utc(coupon.redeemed_at) if coupon.redeemed_at else None,
        "venue": offer.venue_id,
        "shop": offer.shop.slug,
        "currency": offer.shop.currency,
    }


def coupons_of_user(*, user):
    """The user's coupons, newest first, used and expired ones included."""
    return (
        Coupon.objects.filter(user=user)
        .select_related("offer", "offer__sku", "offer__shop")
        .order_by("-issued_at", "-pk")
    )


def offers_due(*, venue_id: int, trigger: str, now):
    """The venue's offers with this trigger that issue coupons at ``now``: active, started,
    not ended, with redemptions left (or no cap)."""
    return (
        GeoOffer.objects.filter(venue_id=venue_id, trigger=trigger, is_active=True, starts_at__lte=now)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .filter(Q(redemptions_left__isnull=True) | Q(redemptions_left__gt=0))
        .select_related("shop", "sku")
        .order_by("pk")
    )


def coupons_issue(*, user, venue_id: int, trigger: str, now) -> list[Coupon]:
    """Issue ``user`` the coupons due at ``venue_id`` on ``trigger`` ("enter" or "dwell"):
    one per offer that issues at ``now`` (``offers_due``) and that the user has no coupon
    of yet. Idempotent, also when called twice at once: the unique (offer, user) pair
    makes the second insert of a pair a no-op. Returns only the coupons this call issued;
    emits ``coupon.issued`` for each. Called inside the ping's transition transaction
    (opens a savepoint per coupon)."""
    issued: list[Coupon] = []
    offers = list(offers_due(venue_id=venue_id, trigger=trigger, now=now).exclude(coupons__user=user))
    with transaction.atomic():
        for offer in offers:
            coupon = Coupon(
                offer=offer, user=user, issued_at=now, expires_at=now + timedelta(minutes=offer.expires_minutes)
            )
            try:
                with transaction.atomic():
                    coupon.save(force_insert=True)
            except IntegrityError:
                continue  # issued meanwhile by a parallel ping (one per viewer and offer)
            emit("coupon.issued", coupon_issued_payload(coupon), groups=[f"shop.{offer.shop_id}"])
            issued.append(coupon)
    return issued


def coupon_issued_payload(coupon: Coupon) -> dict:
    offer = coupon.offer
    return {
        "coupon": coupon.pk,
        "offer": offer.pk,
        "venue": offer.venue_id,
        "shop": offer.shop_id,
        "user": coupon.user_id,
        "issued_at": coupon.issued_at,
        "expires_at": coupon.expires_at,
    }


def coupon_event_payload(coupon: Coupon, *, order_id: int | None = None) -> dict:
    payload = {"coupon": coupon.pk, "offer": coupon.offer_id, "shop": coupon.offer.shop_id, "user": coupon.user_id}
    if order_id is not None:
        payload["order"] = order_id
    return payload


# -- geo offers (the admin's writes) ---------------------------------------------------------


GEO_OFFER_FIELDS = (
    "venue",
    "label",
    "trigger",
    "kind",
    "sku",
    "start_value",
    "end_value",
    "decay_minutes",
    "expires_minutes",
    "cap",
    "starts_at",
    "ends_at",
    "is_active",
)


def geo_offer_errors(*, shop, fields: dict) -> dict[str, list[str]]:
    """What is wrong with ``fields`` for a geo offer of ``shop``, per field (the database
    constraints as field errors, and the shop's own venue and SKU)."""
    errors: dict[str, list[str]] = {}
    start, end = fields.get("start_value"), fields.get("end_value")
    if start is not None and end is not None and end > start:
        errors.setdefault("end_value", []).append("The end value must not be above the start value.")
    if fields.get("kind") == GeoOffer.Kind.PERCENT and start is not None and start > 100:
        errors.setdefault("start_value", []).append("A percentage cannot be over 100.")
    venue, sku = fields.get("venue"), fields.get("sku")
    if venue is not None and venue.location.shop_id != shop.pk:
        errors.setdefault("venue", []).append("Choose one of your own venues.")
    if sku is not None and sku.shop_id != shop.pk:
        errors.setdefault("sku", []).append("Choose one of your own SKUs.")
    starts, ends = fields.get("starts_at"), fields.get("ends_at")
    if starts is not None and ends is not None and ends <= starts:
        errors.setdefault("ends_at", []).append("The offer must end after it starts.")
    return errors


def geo_offer_save(*, shop, offer: GeoOffer | None = None, **fields) -> GeoOffer:
    """Create (``offer`` None) or update a geo offer of ``shop``. A cap sets the redemptions
    left to the cap less the coupons redeemed so far (never below 0); no cap clears it.
    Raises GeoOfferInvalid (with ``fields``: field -> messages) and writes nothing when a
    field is wrong. Emits ``geo_offer.created`` or ``geo_offer.updated``."""
    from .exceptions import GeoOfferInvalid

    errors = geo_offer_errors(shop=shop, fields=fields)
    if errors:
        raise GeoOfferInvalid(fields=errors)
    with transaction.atomic():
        created = offer is None or offer.pk is None
        if created:
            offer = offer or GeoOffer(shop=shop)
            offer.shop = shop
        else:
            offer = GeoOffer.objects.select_for_update().get(pk=offer.pk, shop=shop)
        for name, value in fields.items():
            if name not in GEO_OFFER_FIELDS:
                raise TypeError(f"geo_offer_save() got an unexpected field {name!r}")
            setattr(offer, name, value)
        if offer.cap is None:
            offer.redemptions_left = None
        else:
            used = 0 if created else offer.coupons.filter(redeemed_at__isnull=False).count()
            offer.redemptions_left = max(offer.cap - used, 0)
        offer.save()
        invalidate_on_commit()  # the fence cache keeps which offers run where (fence_cache.py)
        emit(
            "geo_offer.created" if created else "geo_offer.updated",
            {"offer": offer.pk, "shop": shop.pk, "venue": offer.venue_id},
            groups=[f"shop.{shop.pk}"],
        )
    return offer
