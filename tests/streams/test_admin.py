"""Scheduling a drop in the admin, as a creator: stream, pins (through the services), deals."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.streams.models import FlashDeal, Pin, Stream
from creatorcommerce.spine.models import OutboxEvent
from tests.factories import CreatorFactory, make_sku

pytestmark = pytest.mark.django_db


def _form(shop, sku, *, deal=None, extra=None):
    start = timezone.now() + timedelta(hours=1)
    data = {
        "title": "Friday drop",
        "description": "",
        "starts_at_0": start.strftime("%Y-%m-%d"),
        "starts_at_1": start.strftime("%H:%M:%S"),
        "ends_at_0": "",
        "ends_at_1": "",
        "hls_url": "",
        "poster_url": "",
        "ingest_token": "ingest-secret-123456",
        "pins-TOTAL_FORMS": "1",
        "pins-INITIAL_FORMS": "0",
        "pins-0-sku": str(sku.pk),
        "pins-0-position": "1",
        "deals-TOTAL_FORMS": "1" if deal else "0",
        "deals-INITIAL_FORMS": "0",
        "annotations-TOTAL_FORMS": "0",
        "annotations-INITIAL_FORMS": "0",
    }
    if deal:
        for key, value in deal.items():
            data[f"deals-0-{key}"] = value
    data.update(extra or {})
    return data


def _deal(sku, *, quantity="5", opens=None, closes=None):
    opens = opens or timezone.now() + timedelta(hours=1)
    closes = closes or opens + timedelta(minutes=10)
    return {
        "sku": str(sku.pk),
        "location": "",
        "price": "5.00",
        "quantity": quantity,
        "per_buyer_limit": "1",
        "opens_at_0": opens.strftime("%Y-%m-%d"),
        "opens_at_1": opens.strftime("%H:%M:%S"),
        "closes_at_0": closes.strftime("%Y-%m-%d"),
        "closes_at_1": closes.strftime("%H:%M:%S"),
    }


def test_creator_schedules_a_stream_with_pins_and_a_deal(client):
    creator = CreatorFactory()
    sku = make_sku(creator.shop, code="ADM-1", stock=20)
    client.force_login(creator)
    response = client.post("/admin/streams/stream/add/", _form(creator.shop, sku, deal=_deal(sku)))
    assert response.status_code == 302, response.content.decode()[:3000]
    stream = Stream.objects.get()
    assert stream.shop == creator.shop and stream.status == Stream.Status.SCHEDULED
    assert list(Pin.objects.filter(stream=stream).values_list("sku__code", flat=True)) == ["ADM-1"]
    assert OutboxEvent.objects.filter(type="pins.changed").count() == 1  # pinned through the service
    assert FlashDeal.objects.get(stream=stream).status == FlashDeal.Status.SCHEDULED


def test_deal_validation_in_the_admin(client):
    creator = CreatorFactory()
    sku = make_sku(creator.shop, code="ADM-2", stock=3)
    client.force_login(creator)
    opens = timezone.now() + timedelta(hours=2)
    too_many = client.post("/admin/streams/stream/add/", _form(creator.shop, sku, deal=_deal(sku, quantity="10")))
    assert too_many.status_code == 200 and b"holds only 3" in too_many.content
    backwards = client.post(
        "/admin/streams/stream/add/",
        _form(creator.shop, sku, deal=_deal(sku, opens=opens, closes=opens - timedelta(minutes=5))),
    )
    assert backwards.status_code == 200 and b"cannot close before it opens" in backwards.content
    assert not Stream.objects.exists()


def test_creator_cannot_pin_another_shops_sku(client):
    creator = CreatorFactory()
    theirs = make_sku(code="NOT-MINE", stock=3)
    client.force_login(creator)
    response = client.post("/admin/streams/stream/add/", _form(creator.shop, theirs))
    assert response.status_code == 200  # the choice is not offered: a form error
    assert not Stream.objects.exists()


def test_start_action_emits_stream_started(client):
    creator = CreatorFactory()
    stream = Stream.objects.create(shop=creator.shop, title="Later", starts_at=timezone.now() + timedelta(days=1))
    client.force_login(creator)
    client.post("/admin/streams/stream/", {"action": "start_now", "_selected_action": [stream.pk]})
    stream.refresh_from_db()
    assert stream.status == Stream.Status.LIVE
    assert OutboxEvent.objects.filter(type="stream.started").exists()


def test_other_creators_stream_is_not_reachable(client):
    mine, theirs = CreatorFactory(), CreatorFactory()
    stream = Stream.objects.create(shop=theirs.shop, title="Theirs", starts_at=timezone.now())
    client.force_login(mine)
    assert b"Theirs" not in client.get("/admin/streams/stream/").content
    assert client.get(f"/admin/streams/stream/{stream.pk}/change/").status_code in (302, 403, 404)
