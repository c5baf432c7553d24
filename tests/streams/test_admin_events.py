"""Every write of the stream admin (and of the creator's deal controls) goes through a streams
service and is an event on the spine: moving pins reaches the viewers, scheduling, editing
and deleting deals reaches the control room, and a stream's save writes only what was edited.

Forms are posted as a browser would (every input of the page as rendered, see
test_admin_writes.py), with a test's edits on top.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.utils import timezone

from apps.streams.models import FlashDeal, Pin, Stream
from apps.streams.selectors import deal_row, stream_pins
from apps.streams.services import stream_start
from tests.helpers import events_since, inline_row, last_event_id, page_form
from tests.streams.sockets import open_viewer, receive_until
from tests.streams.test_admin_writes import page_errors, post, set_time, stream_url
from tests.streams.test_api import assert_error, post_json, url

DB = pytest.mark.django_db


@pytest.fixture
def logged_in(client, creator):
    client.force_login(creator)
    return client


def only_event(mark: int, event_type: str):
    events = events_since(mark, event_type)
    assert len(events) == 1, [(e.type, e.payload) for e in events]
    return events[0]


def swap_pins(data, first: Pin, second: Pin) -> None:
    data[f"{inline_row(data, 'pins', first)}-position"] = str(second.position)
    data[f"{inline_row(data, 'pins', second)}-position"] = str(first.position)


def new_deal_row(data, sku, *, price="9.00", quantity="4", opens_at=None) -> None:
    """Fill the first empty row of the deals inline (adding one if the page has none)."""
    index = int(data["deals-INITIAL_FORMS"])
    data["deals-TOTAL_FORMS"] = str(max(int(data["deals-TOTAL_FORMS"]), index + 1))
    row = f"deals-{index}"
    opens_at = opens_at or timezone.now() + timedelta(hours=2)
    data.update({f"{row}-sku": str(sku.pk), f"{row}-price": price, f"{row}-quantity": quantity})
    data.update({f"{row}-per_buyer_limit": "1", f"{row}-location": ""})
    set_time(data, f"{row}-opens_at", opens_at)
    set_time(data, f"{row}-closes_at", opens_at + timedelta(minutes=30))


# -- pins -------------------------------------------------------------------------------------


@DB
def test_moving_pins_in_the_admin_emits_pins_changed_in_the_new_order(logged_in, live_stream, deal_sku, plain_sku):
    first, second = Pin.objects.get(sku=deal_sku), Pin.objects.get(sku=plain_sku)
    data = page_form(logged_in, stream_url(live_stream))
    swap_pins(data, first, second)
    mark = last_event_id()

    response = post(logged_in, live_stream, data)

    assert response.status_code == 302, page_errors(response)
    event = only_event(mark, "pins.changed")
    assert event.groups == [f"stream.{live_stream.pk}"]
    assert event.payload == {"stream": live_stream.pk, "pins": stream_pins(stream=live_stream)}
    assert [p["sku"] for p in event.payload["pins"]] == [plain_sku.code, deal_sku.code]


@DB
def test_saving_pins_unmoved_emits_nothing(logged_in, live_stream):
    data = page_form(logged_in, stream_url(live_stream))
    mark = last_event_id()
    assert post(logged_in, live_stream, data).status_code == 302
    assert events_since(mark) == []


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_pin_moved_in_the_admin_reaches_a_viewer(layer, stream_setup, close_db_after):
    stream = stream_setup["stream"]
    viewer, snapshot = await open_viewer(stream)
    assert [p["sku"] for p in snapshot["pins"]] == ["PIN-0", "PIN-1"]

    def move():
        client = Client()
        client.force_login(stream_setup["creator"])
        data = page_form(client, stream_url(stream))
        swap_pins(data, *Pin.objects.filter(stream=stream).order_by("position"))
        assert post(client, stream, data).status_code == 302

    await sync_to_async(move)()

    messages = await receive_until(viewer, lambda got: any(m["type"] == "pin" for m in got))
    pin = next(m for m in messages if m["type"] == "pin")
    assert [p["sku"] for p in pin["pins"]] == ["PIN-1", "PIN-0"]
    await viewer.disconnect()


# -- deals ------------------------------------------------------------------------------------


@DB
def test_scheduling_a_deal_in_the_admin_emits_deal_scheduled(logged_in, scheduled_stream, deal_sku):
    data = page_form(logged_in, stream_url(scheduled_stream))
    new_deal_row(data, deal_sku, price="9.00", quantity="4")
    mark = last_event_id()

    response = post(logged_in, scheduled_stream, data)

    assert response.status_code == 302, page_errors(response)
    deal = FlashDeal.objects.get(stream=scheduled_stream)
    event = only_event(mark, "deal.scheduled")
    assert event.groups == [f"control.{scheduled_stream.pk}"]  # viewers see a deal once it opens
    assert event.payload == {"stream": scheduled_stream.pk, **deal_row(deal)}
    assert event.payload["price"] == "9.00" and event.payload["quantity"] == 4
    assert (event.payload["status"], event.payload["sku"]) == ("scheduled", deal_sku.code)


@DB
def test_times_a_creator_types_in_their_zone_travel_in_utc(logged_in, creator, scheduled_stream, deal_sku):
    """The admin reads times in the creator's zone (Berlin here); events and pages must carry
    them as UTC ("...Z"), not as "+01:00" relabelled: the control room sorts and compares them."""
    from zoneinfo import ZoneInfo

    creator.time_zone = "Europe/Berlin"
    creator.save(update_fields=["time_zone"])
    opens_at = (timezone.now() + timedelta(days=1)).astimezone(ZoneInfo("Europe/Berlin")).replace(microsecond=0)
    data = page_form(logged_in, stream_url(scheduled_stream))
    new_deal_row(data, deal_sku, opens_at=opens_at)
    mark = last_event_id()

    response = post(logged_in, scheduled_stream, data)

    assert response.status_code == 302, page_errors(response)
    event = only_event(mark, "deal.scheduled")
    assert event.payload["opens_at"].endswith("Z")
    assert datetime.fromisoformat(event.payload["opens_at"].replace("Z", "+00:00")) == opens_at


@DB
def test_editing_a_scheduled_deal_emits_its_new_terms(logged_in, scheduled_stream, deal_sku, make_deal):
    deal = make_deal(scheduled_stream, deal_sku, opens_at=timezone.now() + timedelta(hours=2))
    data = page_form(logged_in, stream_url(scheduled_stream))
    data[f"{inline_row(data, 'deals', deal)}-price"] = "7.50"
    mark = last_event_id()

    response = post(logged_in, scheduled_stream, data)

    assert response.status_code == 302, page_errors(response)
    deal.refresh_from_db()
    event = only_event(mark, "deal.scheduled")
    assert event.payload == {"stream": scheduled_stream.pk, **deal_row(deal)}
    assert event.payload["price"] == "7.50"


@DB
def test_deleting_a_deal_in_the_admin_emits_deal_deleted(logged_in, scheduled_stream, deal_sku, make_deal):
    deal = make_deal(scheduled_stream, deal_sku, opens_at=timezone.now() + timedelta(hours=2))
    data = page_form(logged_in, stream_url(scheduled_stream))
    data[f"{inline_row(data, 'deals', deal)}-DELETE"] = "on"
    mark = last_event_id()

    response = post(logged_in, scheduled_stream, data)

    assert response.status_code == 302, page_errors(response)
    assert not FlashDeal.objects.filter(pk=deal.pk).exists()
    event = only_event(mark, "deal.deleted")
    assert event.groups == [f"control.{scheduled_stream.pk}"]
    assert event.payload == {"stream": scheduled_stream.pk, "id": deal.pk, "sku": deal_sku.code, "sku_id": deal_sku.pk}


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_the_control_room_follows_deals_scheduled_cancelled_and_deleted(layer, stream_setup, close_db_after):
    from tests.streams.test_consumers import _control_socket

    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    room = await _control_socket(stream, stream_setup["creator"])
    assert (await room.receive_json_from())["type"] == "snapshot"
    client = Client()
    await sync_to_async(client.force_login)(stream_setup["creator"])

    def schedule():
        data = page_form(client, stream_url(stream))
        new_deal_row(data, sku, price="8.00")
        assert post(client, stream, data).status_code == 302
        return FlashDeal.objects.get(stream=stream)

    deal = await sync_to_async(schedule)()
    got = await receive_until(room, lambda got: any(m["type"] == "deal_scheduled" for m in got))
    scheduled = next(m for m in got if m["type"] == "deal_scheduled")
    assert scheduled["deal"] == await sync_to_async(deal_row)(deal)
    assert scheduled["deal"]["price"] == "8.00" and scheduled["deal"]["status"] == "scheduled"

    cancelled = await sync_to_async(post_json)(client, url(stream, f"deals/{deal.pk}/close"))
    assert cancelled.status_code == 200
    got = await receive_until(room, lambda got: any(m["type"] == "deal_cancelled" for m in got))
    assert {"type": "deal_cancelled", "id": deal.pk} in got

    def delete():
        data = page_form(client, stream_url(stream))
        data[f"{inline_row(data, 'deals', deal)}-DELETE"] = "on"
        assert post(client, stream, data).status_code == 302

    await sync_to_async(delete)()
    got = await receive_until(room, lambda got: any(m["type"] == "deal_deleted" for m in got))
    assert {"type": "deal_deleted", "id": deal.pk} in got
    await room.disconnect()


@DB
def test_a_scheduled_deal_cancelled_emits_deal_cancelled_to_the_control_room_only(
    live_stream, plain_sku, make_deal, creator
):
    deal = make_deal(live_stream, plain_sku, opens_at=timezone.now() + timedelta(hours=1))
    client = Client()
    client.force_login(creator)
    mark = last_event_id()

    assert post_json(client, url(live_stream, f"deals/{deal.pk}/close")).status_code == 200

    deal.refresh_from_db()
    event = only_event(mark, "deal.cancelled")
    assert event.groups == [f"control.{live_stream.pk}"]
    assert event.payload == {"stream": live_stream.pk, **deal_row(deal)}
    assert event.payload["status"] == "closed"
    assert events_since(mark, "deal.closed") == []  # viewers never saw it: nothing to close for them


# -- opening a deal by hand ---------------------------------------------------------------------


@DB
def test_open_now_while_another_deal_on_the_sku_is_open_is_refused_and_changes_nothing(
    live_stream, open_deal, deal_sku, make_deal, creator
):
    later = make_deal(live_stream, deal_sku, opens_at=open_deal.closes_at + timedelta(minutes=5))
    before = FlashDeal.objects.filter(pk=later.pk).values().get()
    client = Client()
    client.force_login(creator)
    mark = last_event_id()

    response = post_json(client, url(live_stream, f"deals/{later.pk}/open"))

    assert_error(response, 409, "another_deal_open")
    assert FlashDeal.objects.filter(pk=later.pk).values().get() == before  # its window did not move
    assert events_since(mark) == []


@DB
def test_open_now_moves_the_window_and_opens_in_one_step(live_stream, plain_sku, make_deal, creator):
    deal = make_deal(live_stream, plain_sku, opens_at=timezone.now() + timedelta(hours=1))
    client = Client()
    client.force_login(creator)
    mark = last_event_id()

    response = post_json(client, url(live_stream, f"deals/{deal.pk}/open"))

    assert response.status_code == 200, response.content
    deal.refresh_from_db()
    assert deal.status == FlashDeal.Status.OPEN and deal.opens_at <= timezone.now()
    event = only_event(mark, "deal.opened")
    assert (event.payload["deal_id"], event.payload["sku"], event.payload["remaining"]) == (deal.pk, plain_sku.code, 5)


@DB
def test_open_now_before_the_stream_is_live_changes_nothing(scheduled_stream, plain_sku, make_deal, creator):
    deal = make_deal(scheduled_stream, plain_sku, opens_at=timezone.now() + timedelta(hours=1))
    before = FlashDeal.objects.filter(pk=deal.pk).values().get()
    client = Client()
    client.force_login(creator)
    assert_error(post_json(client, url(scheduled_stream, f"deals/{deal.pk}/open")), 409, "stream_not_live")
    assert FlashDeal.objects.filter(pk=deal.pk).values().get() == before


@DB
def test_open_now_on_a_deal_deleted_meanwhile_is_a_404_not_a_500(live_stream, plain_sku, make_deal):
    from apps.streams.exceptions import DealNotFound
    from apps.streams.services import deal_open_now

    deal = make_deal(live_stream, plain_sku, opens_at=timezone.now() + timedelta(hours=1))
    FlashDeal.objects.filter(pk=deal.pk).delete()  # another tab deleted it
    with pytest.raises(DealNotFound):
        deal_open_now(deal=deal)


# -- the stream itself ---------------------------------------------------------------------------


@DB
def test_adding_a_stream_in_the_admin_emits_stream_scheduled(logged_in, creator, plain_sku):
    from tests.streams.test_admin import _form

    mark = last_event_id()
    response = logged_in.post("/admin/streams/stream/add/", _form(creator.shop, plain_sku))

    assert response.status_code == 302, response.content[:2000]
    stream = Stream.objects.get(shop=creator.shop)
    event = only_event(mark, "stream.scheduled")
    assert event.groups == [f"control.{stream.pk}", f"shop.{creator.shop.pk}"]
    assert event.payload == {
        "stream": stream.pk,
        "shop": creator.shop.pk,
        "status": "scheduled",
        "title": "Friday drop",
        "starts_at": stream.starts_at.isoformat().replace("+00:00", "Z"),
        "ends_at": None,
        "sequence": 0,
    }
    assert [e.type for e in events_since(mark, "pins.changed")] == ["pins.changed"]  # the pin, as before


@DB
def test_editing_a_stream_emits_stream_updated_with_what_changed(logged_in, scheduled_stream):
    data = page_form(logged_in, stream_url(scheduled_stream))
    data["title"] = "Renamed show"
    mark = last_event_id()

    assert post(logged_in, scheduled_stream, data).status_code == 302

    event = only_event(mark, "stream.updated")
    assert event.payload["title"] == "Renamed show" and event.payload["changed"] == ["title"]
    assert event.payload["stream"] == scheduled_stream.pk and event.payload["status"] == "scheduled"


@DB
def test_a_stream_started_while_its_page_was_open_stays_live(logged_in, scheduled_stream, monkeypatch):
    data = page_form(logged_in, stream_url(scheduled_stream))
    data["title"] = "Renamed show"
    original = Stream.clean

    def clean_then_tick(self):  # the scheduler starts the stream during the save
        original(self)
        stream_start(stream=scheduled_stream)

    monkeypatch.setattr(Stream, "clean", clean_then_tick)

    assert post(logged_in, scheduled_stream, data).status_code == 302

    stream = Stream.objects.get(pk=scheduled_stream.pk)
    assert stream.title == "Renamed show"
    assert stream.status == Stream.Status.LIVE and stream.started_at is not None


# -- the catalog's changes reach the pins ----------------------------------------------------------


@DB(transaction=True)
def test_a_pinned_sku_renamed_in_the_catalog_admin_reaches_the_pins(logged_in, live_stream, plain_sku):
    data = page_form(logged_in, f"/admin/catalog/sku/{plain_sku.pk}/change/")
    data["title"] = "Renamed tee"
    mark = last_event_id()

    assert logged_in.post(f"/admin/catalog/sku/{plain_sku.pk}/change/", data).status_code == 302

    event = only_event(mark, "pins.changed")  # by the streams app's handler of sku.updated
    assert event.payload == {"stream": live_stream.pk, "pins": stream_pins(stream=live_stream)}
    assert next(p for p in event.payload["pins"] if p["sku"] == plain_sku.code)["title"] == "Renamed tee"


@DB(transaction=True)
def test_a_pinned_sku_deleted_in_the_catalog_admin_leaves_the_pins(logged_in, live_stream, plain_sku, deal_sku):
    url = f"/admin/catalog/product/{plain_sku.product_id}/change/"
    data = page_form(logged_in, url)
    data[f"{inline_row(data, 'skus', plain_sku)}-DELETE"] = "on"
    mark = last_event_id()

    assert logged_in.post(url, data).status_code == 302

    event = only_event(mark, "pins.changed")
    assert [p["sku"] for p in event.payload["pins"]] == [deal_sku.code]


# -- annotations -----------------------------------------------------------------------------------


@DB
def test_annotations_added_edited_and_deleted_in_the_admin_are_events(logged_in, scheduled_stream, plain_sku):
    data = page_form(logged_in, stream_url(scheduled_stream))
    index = int(data["annotations-INITIAL_FORMS"])
    data["annotations-TOTAL_FORMS"] = str(max(int(data["annotations-TOTAL_FORMS"]), index + 1))
    data.update(
        {
            f"annotations-{index}-offset_seconds": "90",
            f"annotations-{index}-text": "The tee, up close",
            f"annotations-{index}-sku": str(plain_sku.pk),
        }
    )
    mark = last_event_id()
    assert post(logged_in, scheduled_stream, data).status_code == 302
    note = scheduled_stream.annotations.get()
    event = only_event(mark, "annotation.created")
    assert event.groups == [f"control.{scheduled_stream.pk}"]
    assert event.payload == {
        "stream": scheduled_stream.pk,
        "id": note.pk,
        "offset_seconds": 90,
        "text": "The tee, up close",
        "sku": plain_sku.code,
    }

    data = page_form(logged_in, stream_url(scheduled_stream))
    data[f"{inline_row(data, 'annotations', note)}-text"] = "The tee, in the light"
    mark = last_event_id()
    assert post(logged_in, scheduled_stream, data).status_code == 302
    event = only_event(mark, "annotation.updated")
    assert (event.payload["text"], event.payload["changed"]) == ("The tee, in the light", ["text"])

    data = page_form(logged_in, stream_url(scheduled_stream))
    data[f"{inline_row(data, 'annotations', note)}-DELETE"] = "on"
    mark = last_event_id()
    assert post(logged_in, scheduled_stream, data).status_code == 302
    assert only_event(mark, "annotation.deleted").payload == {"stream": scheduled_stream.pk, "id": note.pk}
    assert not scheduled_stream.annotations.exists()
