"""The demo is seeded by each app's own step (``apps/<app>/demo.py``), listed in order by
creatorcommerce/demo.py, and written through the services: the demo's stream, pins and deal
are events on the spine, as a creator's would be."""

from __future__ import annotations

import pytest
from django.core.management import call_command

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
    ]


def test_the_demo_stream_is_written_through_the_services_and_once():
    mark = last_event_id()
    call_command("seed_demo")

    stream = Stream.objects.get(title="Friday night drop")
    deal = FlashDeal.objects.get(stream=stream)
    types = [e.type for e in events_since(mark, "stream.scheduled", "stream.started", "deal.scheduled", "deal.opened")]
    assert types == ["stream.scheduled", "stream.started", "deal.scheduled", "deal.opened"]
    (scheduled,) = events_since(mark, "deal.scheduled")
    assert scheduled.payload["id"] == deal.pk and scheduled.payload["price"] == "35.00"
    assert len(events_since(mark, "pins.changed")) == 5

    # What the demo shows: the stream live, five pins in order, the deal open on the poster.
    assert stream.status == Stream.Status.LIVE
    assert list(stream.pins.values_list("sku__code", flat=True)) == ["TEE-S", "TEE-M", "TEE-L", "POSTER", "STICKERS"]
    assert (deal.sku.code, str(deal.price), deal.status, deal.remaining) == ("POSTER", "35.00", "open", 10)

    again = last_event_id()
    call_command("seed_demo")
    assert events_since(again, "stream.scheduled", "deal.scheduled", "pins.changed") == []
    assert Stream.objects.count() == 1 and FlashDeal.objects.count() == 1
