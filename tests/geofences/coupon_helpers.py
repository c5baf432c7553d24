"""Helpers of the coupon tests: a venue of a shop, a geo offer, a coupon issued at a
controlled moment, and a buy with a coupon at a controlled moment."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from apps.catalog.models import Location
from apps.geofences.coupons import coupons_issue, geo_offer_save
from apps.geofences.models import Venue
from apps.orders.services import order_place, request_fingerprint

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
_keys = itertools.count()


def make_venue(shop) -> Venue:
    location = Location.objects.create(shop=shop, name=f"Pop-up {next(_keys)}", kind=Location.Kind.VENUE)
    return Venue.objects.create(
        location=location, fence_kind=Venue.FenceKind.CIRCLE, center_lon=13.4, center_lat=52.5, radius_m=50
    )


def make_offer(shop, *, venue=None, sku=None, **fields):
    defaults = {
        "label": "Pop-up special",
        "trigger": "enter",
        "kind": "percent",
        "start_value": Decimal("20.00"),
        "end_value": Decimal("5.00"),
        "decay_minutes": 30,
        "expires_minutes": 60,
        "cap": None,
        "starts_at": T0 - timedelta(hours=1),
        "ends_at": None,
        "is_active": True,
    }
    defaults.update(fields)
    return geo_offer_save(shop=shop, venue=venue or make_venue(shop), sku=sku, **defaults)


def issue(user, offer, *, at=T0, trigger="enter"):
    (coupon,) = coupons_issue(user=user, venue_id=offer.venue_id, trigger=trigger, now=at)
    return coupon


def coupon_buy(buyer, lines, *, coupon=None, now=T0, key=None):
    """``order_place`` with a coupon at ``now``: (status, body)."""
    key = key or f"coupon-buy-{next(_keys):06d}"
    body = {"lines": [{"sku": c, "quantity": q} for c, q in lines], "coupon": coupon}
    outcome = order_place(
        buyer=buyer, lines=lines, coupon=coupon, idempotency_key=key, fingerprint=request_fingerprint(body), now=now
    )
    return outcome.status, outcome.body
