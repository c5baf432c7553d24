"""The geofences app's demo step: a pop-up venue of the demo shop with a fence, shelf stock
of its own, a geo offer whose coupon runs down from 25 % to 10 % off, and a smart bundle
offered when the venue runs low on the anchor tee (docs/geofences.md). On the demo stream's
page, "Simulate my position" (demo mode) puts the viewer inside the fence from a desk.

Everything through the services (venues, geo offers, stock, bundles), so each write is an
event as in real use; running it twice changes nothing that is already there.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from apps.catalog.models import SKU, BundleRule, StockLevel
from apps.catalog.services import bundle_rule_save, stock_adjust

from .coupons import geo_offer_save
from .models import GeoOffer, Venue
from .services import venue_create, venue_update

DEMO_VENUE_NAME = "Pop-up at the Kulturbrauerei"
# A courtyard in Berlin, about 115 m by 80 m (lon, lat).
DEMO_FENCE = {
    "type": "Polygon",
    "coordinates": [
        [[13.4120, 52.5386], [13.4137, 52.5386], [13.4137, 52.5393], [13.4120, 52.5393], [13.4120, 52.5386]]
    ],
}
# What is on the venue's own shelf: few tees, so that the bundle's trigger is one sale away.
DEMO_VENUE_STOCK = {"TEE-M": 6, "POSTER": 3, "STICKERS": 40}
DEMO_OFFER_LABEL = "Pop-up welcome: 25% off, running down to 10%"
DEMO_BUNDLE_LABEL = "Tee + sticker pack"
DEMO_BUNDLE_THRESHOLD = 5


def seed(context: dict) -> dict:
    shop = context["users"]["creator"].shop
    now = timezone.now()
    venue = Venue.objects.filter(location__shop=shop, location__name=DEMO_VENUE_NAME).first()
    announcement = {
        "announcement": "Live signing at the pop-up tonight: come by for a coupon that is worth most when you arrive.",
        "announce_radius_m": 2000,
        "event_starts_at": now + timedelta(hours=3),
    }
    if venue is None:
        venue = venue_create(
            shop=shop,
            name=DEMO_VENUE_NAME,
            address="Schönhauser Allee 36, 10435 Berlin",
            fence_kind=Venue.FenceKind.POLYGON,
            fence=DEMO_FENCE,
            time_zone="Europe/Berlin",
            dwell_seconds=300,
            **announcement,
        )
    elif venue.event_starts_at is None or venue.event_starts_at <= now:
        venue = venue_update(venue=venue, **announcement)  # a re-seed announces the next one

    location = venue.location
    for code, units in DEMO_VENUE_STOCK.items():
        sku = SKU.objects.get(shop=shop, code=code)
        if not StockLevel.objects.filter(sku=sku, location=location).exists():
            stock_adjust(sku=sku, location=location, set_to=units)

    if not GeoOffer.objects.filter(shop=shop, venue=venue, label=DEMO_OFFER_LABEL).exists():
        geo_offer_save(
            shop=shop,
            venue=venue,
            label=DEMO_OFFER_LABEL,
            trigger=GeoOffer.Trigger.ENTER,
            kind=GeoOffer.Kind.PERCENT,
            sku=None,
            start_value=Decimal("25.00"),
            end_value=Decimal("10.00"),
            decay_minutes=30,
            expires_minutes=60,
            cap=500,
            starts_at=now,
            ends_at=None,
            is_active=True,
        )

    if not BundleRule.objects.filter(shop=shop, label=DEMO_BUNDLE_LABEL).exists():
        bundle_rule_save(
            rule=BundleRule(
                shop=shop,
                label=DEMO_BUNDLE_LABEL,
                anchor=SKU.objects.get(shop=shop, code="TEE-M"),
                trigger=BundleRule.Trigger.LOW_STOCK,
                threshold=DEMO_BUNDLE_THRESHOLD,
                venue=location,
                price=Decimal("30.00"),
            ),
            items=[SKU.objects.get(shop=shop, code="STICKERS")],
        )

    return {
        "venue": venue,
        "summary": [
            f"pop-up venue {DEMO_VENUE_NAME!r} (id {venue.pk}) with a fence, shelf stock, a running-time coupon "
            f"on entry and a bundle when TEE-M runs low there; on the stream page, 'Simulate my position' "
            "(demo mode) takes the viewer inside"
        ],
    }
