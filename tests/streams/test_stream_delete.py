"""Deleting a stream goes through ``stream_delete`` (docs/events.md, ``stream.deleted``), and a
deal's terms name only its stream's shop's SKU and locations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.catalog.models import Location
from apps.streams.exceptions import LocationNotInShop, SkuNotInShop, StreamHasOpenDeal, StreamHasOrders
from apps.streams.models import Annotation, FlashDeal, Pin, Stream
from apps.streams.services import deal_close, deal_schedule, deal_terms_set, stream_delete
from tests.factories import make_buyer, make_sku
from tests.helpers import captured_events
from tests.streams.test_deals import stream_buy

pytestmark = pytest.mark.django_db


def test_stream_delete_removes_the_stream_and_tells_viewers_control_room_and_shop(live_stream, make_deal, deal_sku):
    # live_stream has pins and an open deal: close it first, as a creator would.
    for deal in FlashDeal.objects.filter(stream=live_stream, status=FlashDeal.Status.OPEN):
        deal_close(deal=deal)
    stream_id, shop_id = live_stream.pk, live_stream.shop_id
    with captured_events() as events:
        assert stream_delete(stream=live_stream) is True
    assert events == [
        (
            "stream.deleted",
            {"stream": stream_id, "shop": shop_id},
            [f"stream.{stream_id}", f"control.{stream_id}", f"shop.{shop_id}"],
        )
    ]
    assert not Stream.objects.filter(pk=stream_id).exists()
    assert not Pin.objects.filter(stream_id=stream_id).exists()
    assert not FlashDeal.objects.filter(stream_id=stream_id).exists()
    assert not Annotation.objects.filter(stream_id=stream_id).exists()
    assert stream_delete(stream=live_stream) is False  # gone already: nothing more to tell


def test_a_stream_with_an_open_deal_is_not_deleted(live_stream, open_deal):
    with captured_events() as events, pytest.raises(StreamHasOpenDeal) as caught:
        stream_delete(stream=live_stream)
    assert caught.value.status == 409 and caught.value.code == "stream_has_open_deal"
    assert events == []
    assert Stream.objects.filter(pk=live_stream.pk).exists()


def test_a_stream_whose_deal_sold_units_is_not_deleted(live_stream, open_deal, deal_sku):
    """Order lines name the deal their units came from (a release gives them back there),
    so the deal, and its stream, stay."""
    assert stream_buy(make_buyer(), deal_sku.code, live_stream.pk).status == 201
    deal_close(deal=open_deal)
    with pytest.raises(StreamHasOrders) as caught:
        stream_delete(stream=live_stream)
    assert caught.value.status == 409 and caught.value.code == "stream_has_orders"
    assert FlashDeal.objects.filter(pk=open_deal.pk).exists()


def test_deleting_a_stream_in_the_admin_goes_through_the_service(client, creator, scheduled_stream):
    client.force_login(creator)
    with captured_events() as events:
        response = client.post(f"/admin/streams/stream/{scheduled_stream.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert [event_type for event_type, _, _ in events] == ["stream.deleted"]
    assert not Stream.objects.filter(pk=scheduled_stream.pk).exists()


def test_the_admin_says_a_stream_whose_deal_has_orders_cannot_be_deleted(
    client, creator, live_stream, open_deal, deal_sku
):
    assert stream_buy(make_buyer(), deal_sku.code, live_stream.pk).status == 201
    deal_close(deal=open_deal)
    client.force_login(creator)
    page = client.get(f"/admin/streams/stream/{live_stream.pk}/delete/")
    assert page.status_code == 200 and b"which has orders" in page.content
    client.post(
        "/admin/streams/stream/",
        {"action": "delete_selected", "_selected_action": [str(live_stream.pk)], "post": "yes"},
    )
    assert Stream.objects.filter(pk=live_stream.pk).exists()


def test_a_deal_out_of_another_shops_location_is_refused(scheduled_stream, deal_sku, other_creator):
    foreign = Location.objects.create(shop=other_creator.shop, name="Their depot")
    now = timezone.now()
    terms = {"price": "5.00", "quantity": 1, "opens_at": now, "closes_at": now + timedelta(hours=1)}
    with captured_events() as events, pytest.raises(LocationNotInShop) as caught:
        deal_schedule(stream=scheduled_stream, sku=deal_sku, location=foreign, **terms)
    assert caught.value.code == "location_not_in_shop" and caught.value.status == 400
    assert events == [] and not FlashDeal.objects.exists()


def test_editing_a_deal_to_another_shops_sku_or_location_is_refused(
    scheduled_stream, deal_sku, make_deal, other_creator
):
    deal = make_deal(scheduled_stream, deal_sku, opens_at=timezone.now() + timedelta(hours=1))
    edited = FlashDeal.objects.get(pk=deal.pk)
    edited.sku = make_sku(other_creator.shop)
    with pytest.raises(SkuNotInShop):
        deal_terms_set(deal=edited, changed=["sku"])
    edited = FlashDeal.objects.get(pk=deal.pk)
    edited.location = Location.objects.create(shop=other_creator.shop, name="Their depot")
    with pytest.raises(LocationNotInShop):
        deal_terms_set(deal=edited, changed=["location"])
    deal.refresh_from_db()
    assert deal.sku_id == deal_sku.pk and deal.location_id is None


def test_a_pinned_rows_sku_cannot_be_changed_in_the_admin(client, creator, live_stream, plain_sku):
    """Pins are keyed by SKU: the admin shows a pinned row's SKU as fixed."""
    from apps.streams.admin import PinForm

    pin = Pin.objects.filter(stream=live_stream).first()
    assert PinForm(instance=pin).fields["sku"].disabled
    assert not PinForm().fields["sku"].disabled
