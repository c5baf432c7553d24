"""The demo is seeded by each app's own step (``apps/<app>/demo.py``), listed in order by
creatorcommerce/demo.py, and written through the services: the demo's stream, pins and deal
are events on the spine, as a creator's would be."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.streams.models import FlashDeal, Stream
from creatorcommerce import demo
from tests.helpers import events_since, last_event_id

pytestmark = pytest.mark.django_db


def test_each_app_seeds_its_own_demo_data_in_order():
    assert [step.__module__ for step in demo.STEPS] == [
        "apps.accounts.demo",
        "apps.catalog.demo",
        "apps.orders.demo",
        "apps.streams.demo",
        "apps.geofences.demo",
        "apps.loyalty.demo",
        "apps.calendars.demo",
        "apps.devices.demo",
        "apps.experiments.demo",
    ]
    # What buys through order_place (which commits by itself) runs after the steps' transaction.
    # The personalisation model trains last, on every order seeded before it.
    assert [f"{step.__module__}.{step.__name__}" for step in demo.AFTER_COMMIT] == [
        "apps.loyalty.demo.history",
        "apps.personalization.demo.history",
    ]


def test_the_demo_stream_is_written_through_the_services_and_once():
    mark = last_event_id()
    call_command("seed_demo")

    stream = Stream.objects.get(title="Friday night drop")
    deal = FlashDeal.objects.get(stream=stream, status=FlashDeal.Status.OPEN)
    later = FlashDeal.objects.get(stream=stream, status=FlashDeal.Status.SCHEDULED)
    upcoming = Stream.objects.get(title="Sunday sample sale")  # the calendars' demo drop
    types = [
        (e.type, e.payload.get("stream"))
        for e in events_since(mark, "stream.scheduled", "stream.started", "deal.scheduled", "deal.opened")
    ]
    assert types == [
        ("stream.scheduled", stream.pk),
        ("stream.started", stream.pk),
        ("deal.scheduled", stream.pk),
        ("deal.opened", stream.pk),
        ("deal.scheduled", stream.pk),
        ("stream.scheduled", upcoming.pk),
    ]
    scheduled = events_since(mark, "deal.scheduled")
    assert [(e.payload["id"], e.payload["price"]) for e in scheduled] == [(deal.pk, "35.00"), (later.pk, "19.00")]
    assert len(events_since(mark, "pins.changed")) == 5

    # What the demo shows: the stream live, five pins in order, the deal open on the poster.
    assert stream.status == Stream.Status.LIVE
    assert list(stream.pins.values_list("sku__code", flat=True)) == ["TEE-S", "TEE-M", "TEE-L", "POSTER", "STICKERS"]
    assert (deal.sku.code, str(deal.price), deal.status, deal.remaining) == ("POSTER", "35.00", "open", 10)
    # ... and a deal on the large tee that opens later, for early-access perk holders to try
    # (docs/loyalty.md, "Demo"): within the demo perk's 30 minutes when the demo starts.
    assert (later.sku.code, str(later.price), later.quantity, later.per_buyer_limit) == ("TEE-L", "19.00", 10, 1)
    assert timedelta(minutes=20) < later.opens_at - timezone.now() <= timedelta(minutes=25)

    again = last_event_id()
    call_command("seed_demo")
    assert events_since(again, "stream.scheduled", "deal.scheduled", "pins.changed") == []
    assert Stream.objects.count() == 2 and FlashDeal.objects.count() == 2


def test_the_demo_pop_up_is_written_through_the_services_and_once():
    """The pop-up (docs/geofences.md): a venue with a fence and shelf stock, a geo offer
    issuing a coupon on entry, and a bundle offered when the venue runs low on the tee."""
    from apps.catalog.models import BundleRule, StockLevel
    from apps.geofences.models import GeoOffer, Venue

    mark = last_event_id()
    call_command("seed_demo")
    venue = Venue.objects.get(location__name="Pop-up at the Kulturbrauerei")
    assert venue.location.kind == "venue" and venue.fence["type"] == "Polygon"
    assert [e.payload["venue"] for e in events_since(mark, "venue.updated")] == [venue.pk]
    shelf = dict(StockLevel.objects.filter(location=venue.location).values_list("sku__code", "available"))
    assert shelf == {"TEE-M": 6, "POSTER": 3, "STICKERS": 40}
    offer = GeoOffer.objects.get(venue=venue)
    assert (offer.trigger, offer.kind, offer.sku_id, str(offer.start_value), str(offer.end_value)) == (
        "enter",
        "percent",
        None,
        "25.00",
        "10.00",
    )
    assert [e.payload["offer"] for e in events_since(mark, "geo_offer.created")] == [offer.pk]
    bundle = BundleRule.objects.get(venue=venue.location)
    assert (bundle.anchor.code, bundle.trigger, bundle.threshold, str(bundle.price)) == (
        "TEE-M",
        "low_stock",
        5,
        "30.00",
    )
    assert [e.payload["bundle"] for e in events_since(mark, "bundle.created")] == [bundle.pk]

    again = last_event_id()
    call_command("seed_demo")
    assert events_since(again, "venue.updated", "geo_offer.created", "bundle.created") == []
    assert (Venue.objects.count(), GeoOffer.objects.count(), BundleRule.objects.count()) == (1, 1, 1)
