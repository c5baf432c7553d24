"""The creators' API for drops (docs/streams.md, "Creators' API for drops"): create, reschedule
and cancel over HTTP, the services behind them (which the admin shares), what a cancelled
drop does to the storefront, the scheduler and its deals, and bad input answered with a
4xx and a code, writing nothing."""

from __future__ import annotations

import json
import re
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from apps.catalog.models import StockLevel
from apps.streams.exceptions import StreamIsCancelled
from apps.streams.models import FlashDeal, Pin, Stream
from apps.streams.selectors import deal_row, stream_pins
from apps.streams.services import (
    deal_open,
    deal_schedule,
    pin_add,
    stream_cancel,
    stream_end,
    stream_start,
    stream_update,
    streams_tick,
)
from creatorcommerce.fields import iso_utc
from creatorcommerce.spine.models import OutboxEvent
from tests.factories import make_sku
from tests.helpers import captured_events, expected_stock_changed, page_form
from tests.streams.test_admin_writes import message_texts, page_errors, post, set_time, stream_url
from tests.streams.test_api import assert_error, post_json, signed_in

pytestmark = pytest.mark.django_db

DROP_KEYS = {
    "id",
    "title",
    "description",
    "creator",
    "shop",
    "status",
    "starts_at",
    "hls_url",
    "poster_url",
    "shipping_fee",
    "pins",
}
OWNER_KEYS = DROP_KEYS | {"ends_at", "cancelled_at", "uid", "sequence"}


def z(value) -> str:
    return iso_utc(value)


def later(hours: float = 24):
    return (timezone.now() + timedelta(hours=hours)).replace(microsecond=0)


def patch_json(client, path, body):
    return client.patch(path, json.dumps(body), content_type="application/json")


def cancel(client, stream):
    return post_json(client, f"/api/v1/streams/{stream.pk}/cancel")


def nothing_written(mark_streams: int, mark_events: int) -> None:
    assert Stream.objects.count() == mark_streams
    assert OutboxEvent.objects.count() == mark_events


# -- create ----------------------------------------------------------------------------------------


def test_a_creator_creates_a_drop_with_pins_in_order(creator, deal_sku, plain_sku):
    starts, ends = later(24), later(26)
    body = {
        "title": "Spring drop",
        "starts_at": z(starts),
        "ends_at": ends.astimezone(UTC).isoformat(),  # "+00:00" works as well as "Z"
        "description": "New tees",
        "pins": [plain_sku.code, deal_sku.code],
    }
    with captured_events() as events:
        response = post_json(signed_in(creator), "/api/v1/streams/", body)

    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) == OWNER_KEYS
    stream = Stream.objects.get(pk=data["id"])
    assert stream.shop == creator.shop and stream.status == Stream.Status.SCHEDULED
    assert (stream.title, stream.description, stream.starts_at, stream.ends_at) == (
        "Spring drop",
        "New tees",
        starts,
        ends,
    )
    assert data["status"] == "scheduled" and data["starts_at"] == z(starts) and data["ends_at"] == z(ends)
    assert data["sequence"] == 0 and data["uid"] == str(stream.uid) and data["cancelled_at"] is None
    assert [p["sku"] for p in data["pins"]] == [plain_sku.code, deal_sku.code]
    assert list(Pin.objects.filter(stream=stream).values_list("sku__code", "position")) == [
        (plain_sku.code, 1),
        (deal_sku.code, 2),
    ]
    assert events == [
        (
            "stream.scheduled",
            {
                "stream": stream.pk,
                "shop": creator.shop.pk,
                "status": "scheduled",
                "title": "Spring drop",
                "starts_at": z(starts),
                "ends_at": z(ends),
                "sequence": 0,
            },
            [f"control.{stream.pk}", f"shop.{creator.shop.pk}"],
        ),
        ("pins.changed", {"stream": stream.pk, "pins": stream_pins(stream=stream)}, [f"stream.{stream.pk}"]),
    ]


def test_the_smallest_drop_is_a_title_and_a_start(creator):
    response = post_json(signed_in(creator), "/api/v1/streams/", {"title": "Quick one", "starts_at": z(later())})
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["pins"] == [] and data["ends_at"] is None and data["description"] == ""


def test_every_drop_gets_its_own_uid(creator):
    client = signed_in(creator)
    uids = {
        post_json(client, "/api/v1/streams/", {"title": f"Drop {i}", "starts_at": z(later(i + 1))}).json()["uid"]
        for i in range(3)
    }
    assert len(uids) == 3


def test_a_time_with_an_offset_is_the_same_moment_in_utc(creator):
    response = post_json(
        signed_in(creator), "/api/v1/streams/", {"title": "Berlin", "starts_at": "2030-03-01T20:00:00+01:00"}
    )
    assert response.status_code == 201, response.content
    assert response.json()["starts_at"] == "2030-03-01T19:00:00Z"


def test_viewers_cannot_create_drops(viewer):
    mark = (Stream.objects.count(), OutboxEvent.objects.count())
    assert_error(post_json(signed_in(viewer), "/api/v1/streams/", {"title": "x", "starts_at": z(later())}), 403)
    nothing_written(*mark)


def test_staff_without_a_shop_cannot_create_drops(staff_user):
    assert_error(post_json(signed_in(staff_user), "/api/v1/streams/", {"title": "x", "starts_at": z(later())}), 403)


def test_anonymous_users_cannot_create_drops(client):
    assert_error(post_json(client, "/api/v1/streams/", {"title": "x", "starts_at": z(later())}), 401)


def test_pins_of_another_shop_or_unknown_codes_are_a_400_and_nothing_is_written(creator, other_creator, plain_sku):
    theirs = make_sku(other_creator.shop, code="THEIRS")
    mark = (Stream.objects.count(), OutboxEvent.objects.count())
    body = {"title": "x", "starts_at": z(later()), "pins": [plain_sku.code, theirs.code, "NOPE"]}
    error = assert_error(post_json(signed_in(creator), "/api/v1/streams/", body), 400, "unknown_sku")
    assert error["skus"] == ["THEIRS", "NOPE"]
    nothing_written(*mark)


def _bad_create_bodies():
    start = later(24)
    good = {"title": "Drop", "starts_at": z(start)}
    return [
        pytest.param({**good, "ends_at": z(start)}, "invalid_times", None, id="ends-at-the-start"),
        pytest.param({**good, "ends_at": z(start - timedelta(hours=1))}, "invalid_times", None, id="ends-before"),
        pytest.param(
            {
                "title": "Drop",
                "starts_at": z(timezone.now() - timedelta(hours=3)),
                "ends_at": z(timezone.now() - timedelta(hours=1)),
            },
            "invalid_times",
            None,
            id="ends-in-the-past",
        ),
        pytest.param({**good, "starts_at": "2999-01-01T00:00:00Z"}, "invalid_times", None, id="too-far-ahead"),
        pytest.param({**good, "starts_at": "9999-12-31T23:59:59-14:00"}, "invalid", "starts_at", id="out-of-range"),
        pytest.param({**good, "starts_at": "2030-03-01T20:00:00"}, "invalid", "starts_at", id="no-offset"),
        pytest.param({**good, "starts_at": "tomorrow"}, "invalid", "starts_at", id="not-a-time"),
        pytest.param({**good, "starts_at": "2031-02-30T10:00:00Z"}, "invalid", "starts_at", id="no-such-day"),
        pytest.param({**good, "starts_at": "2031-01-01T25:00:00Z"}, "invalid", "starts_at", id="no-such-hour"),
        pytest.param({**good, "starts_at": "2031-01-01T10:00:00+99:00"}, "invalid", "starts_at", id="no-such-offset"),
        pytest.param({**good, "ends_at": "2031-02-30T10:00:00Z"}, "invalid", "ends_at", id="no-such-end"),
        pytest.param({**good, "starts_at": 1893456000}, "invalid", "starts_at", id="a-number"),
        pytest.param({"starts_at": z(start)}, "invalid", "title", id="no-title"),
        pytest.param({**good, "title": "   "}, "invalid", "title", id="blank-title"),
        pytest.param({**good, "title": 5}, "invalid", "title", id="title-not-a-string"),
        pytest.param({**good, "title": "x" * 201}, "invalid", "title", id="title-too-long"),
        pytest.param({**good, "title": "a\u202eb"}, "invalid", "title", id="bidi-override"),
        pytest.param({"title": "Drop"}, "invalid", "starts_at", id="no-start"),
        pytest.param({**good, "pins": "TEE"}, "invalid", "pins", id="pins-not-a-list"),
        pytest.param({**good, "pins": ["A", "A"]}, "invalid", "pins", id="pins-twice"),
        pytest.param({**good, "pins": [f"S{i}" for i in range(51)]}, "invalid", "pins", id="too-many-pins"),
        pytest.param({**good, "status": "live"}, "invalid", "status", id="unknown-field"),
        pytest.param({**good, "ends_at": "soon"}, "invalid", "ends_at", id="bad-end"),
    ]


@pytest.mark.parametrize(("body", "code", "field"), _bad_create_bodies())
def test_bad_drops_are_a_400_with_a_code_and_nothing_is_written(creator, body, code, field):
    mark = (Stream.objects.count(), OutboxEvent.objects.count())
    error = assert_error(post_json(signed_in(creator), "/api/v1/streams/", body), 400, code)
    if field is not None:
        assert field in error["errors"], error
    nothing_written(*mark)


@pytest.mark.parametrize("raw", ["[]", '"drop"', "null", "{", "not json"])
def test_a_body_that_is_not_an_object_is_a_400(creator, raw):
    response = signed_in(creator).post("/api/v1/streams/", raw, content_type="application/json")
    assert_error(response, 400)
    assert not Stream.objects.exists()


# -- reschedule, rename, describe --------------------------------------------------------------------


def test_rescheduling_moves_the_drop_bumps_the_sequence_and_says_what_moved(creator, scheduled_stream):
    new_start = later(48)
    with captured_events() as events:
        response = patch_json(
            signed_in(creator), f"/api/v1/streams/{scheduled_stream.pk}/", {"starts_at": z(new_start)}
        )

    assert response.status_code == 200, response.content
    stream = Stream.objects.get(pk=scheduled_stream.pk)
    assert stream.starts_at == new_start and stream.sequence == 1 and stream.uid == scheduled_stream.uid
    assert response.json()["starts_at"] == z(new_start) and response.json()["sequence"] == 1
    assert events == [
        (
            "stream.updated",
            {
                "stream": stream.pk,
                "shop": creator.shop.pk,
                "status": "scheduled",
                "title": stream.title,
                "starts_at": z(new_start),
                "ends_at": None,
                "sequence": 1,
                "changed": ["starts_at"],
            },
            [f"control.{stream.pk}", f"shop.{creator.shop.pk}"],
        )
    ]


def test_the_sequence_rises_with_time_title_and_status_changes_only(creator, scheduled_stream):
    client = signed_in(creator)
    path = f"/api/v1/streams/{scheduled_stream.pk}/"

    def sequence():
        return Stream.objects.get(pk=scheduled_stream.pk).sequence

    assert patch_json(client, path, {"description": "Now with posters"}).status_code == 200
    assert sequence() == 0
    assert patch_json(client, path, {"title": scheduled_stream.title}).status_code == 200  # the same title
    assert sequence() == 0
    assert patch_json(client, path, {"title": "Renamed"}).status_code == 200
    assert sequence() == 1
    assert patch_json(client, path, {"ends_at": z(scheduled_stream.starts_at + timedelta(hours=2))}).status_code == 200
    assert sequence() == 2
    assert patch_json(client, path, {"ends_at": None}).status_code == 200
    assert sequence() == 3
    stream_update(stream=scheduled_stream, changes={"hls_url": "https://media.example/live.m3u8"})
    assert sequence() == 3
    assert patch_json(client, path, {"starts_at": z(later(30)), "title": "Moved"}).status_code == 200
    assert sequence() == 4  # one change, one step
    assert cancel(client, scheduled_stream).status_code == 200
    assert sequence() == 5


def test_starting_and_ending_a_drop_leave_its_sequence(creator, scheduled_stream):
    """Going live and ending change nothing a calendar shows (docs/streams.md)."""
    stream_start(stream=scheduled_stream)
    stream_end(stream=scheduled_stream)
    assert Stream.objects.get(pk=scheduled_stream.pk).sequence == 0


def test_a_patch_changing_nothing_sends_nothing(creator, scheduled_stream):
    with captured_events() as events:
        response = patch_json(signed_in(creator), f"/api/v1/streams/{scheduled_stream.pk}/", {})
    assert response.status_code == 200 and events == []


def test_a_live_drop_can_be_renamed_but_not_moved(creator, live_stream):
    client = signed_in(creator)
    path = f"/api/v1/streams/{live_stream.pk}/"
    before = Stream.objects.get(pk=live_stream.pk)
    with captured_events() as events:
        assert_error(patch_json(client, path, {"starts_at": z(later()), "title": "Moved"}), 409, "stream_live")
    assert events == []
    after = Stream.objects.get(pk=live_stream.pk)
    assert (after.starts_at, after.title, after.sequence) == (before.starts_at, before.title, 0)

    response = patch_json(client, path, {"title": "Still live, new name"})
    assert response.status_code == 200 and response.json()["status"] == "live"
    response = patch_json(client, path, {"ends_at": z(later(3))})  # a live show may run longer
    assert response.status_code == 200 and Stream.objects.get(pk=live_stream.pk).sequence == 2


def test_an_ended_drop_keeps_its_times(creator, live_stream):
    stream_end(stream=live_stream)
    path = f"/api/v1/streams/{live_stream.pk}/"
    assert_error(patch_json(signed_in(creator), path, {"ends_at": z(later())}), 409, "stream_ended")
    assert_error(patch_json(signed_in(creator), path, {"starts_at": z(later())}), 409, "stream_ended")


def test_a_cancelled_drop_cannot_be_changed(creator, scheduled_stream):
    stream_cancel(stream=scheduled_stream)
    path = f"/api/v1/streams/{scheduled_stream.pk}/"
    for body in ({"title": "Back on"}, {"starts_at": z(later())}, {"description": "x"}):
        assert_error(patch_json(signed_in(creator), path, body), 409, "stream_cancelled")
    assert Stream.objects.get(pk=scheduled_stream.pk).title == scheduled_stream.title


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"ends_at": "PAST"}, "invalid_times"),
        ({"ends_at": "START"}, "invalid_times"),
        ({"starts_at": "AFTER_END"}, "invalid_times"),
        ({"title": ""}, "invalid"),
        ({"title": None}, "invalid"),
        ({"starts_at": None}, "invalid"),
        ({"starts_at": "2030-01-01 10:00"}, "invalid"),
        ({"pins": []}, "invalid"),
        ({"status": "cancelled"}, "invalid"),
    ],
)
def test_bad_patches_are_a_400_and_change_nothing(creator, make_stream, body, code):
    starts = later(24)
    stream = make_stream(creator.shop, starts_at=starts, ends_at=starts + timedelta(hours=2))
    values = {
        "PAST": z(timezone.now() - timedelta(minutes=5)),
        "START": z(starts),
        "AFTER_END": z(starts + timedelta(hours=3)),
    }
    body = {key: values.get(value, value) if isinstance(value, str) else value for key, value in body.items()}
    with captured_events() as events:
        assert_error(patch_json(signed_in(creator), f"/api/v1/streams/{stream.pk}/", body), 400, code)
    assert events == []
    after = Stream.objects.get(pk=stream.pk)
    assert (after.title, after.starts_at, after.ends_at, after.sequence) == (stream.title, starts, stream.ends_at, 0)


# -- who may -----------------------------------------------------------------------------------------


def test_another_shops_drop_is_a_404_for_every_write(other_creator, scheduled_stream):
    client = signed_in(other_creator)
    path = f"/api/v1/streams/{scheduled_stream.pk}/"
    with captured_events() as events:
        assert_error(patch_json(client, path, {"title": "Mine now"}), 404, "stream_not_found")
        assert_error(cancel(client, scheduled_stream), 404, "stream_not_found")
    assert events == []
    stream = Stream.objects.get(pk=scheduled_stream.pk)
    assert stream.title == scheduled_stream.title and stream.status == Stream.Status.SCHEDULED


def test_an_unknown_drop_is_a_404(creator):
    assert_error(patch_json(signed_in(creator), "/api/v1/streams/999999/", {"title": "x"}), 404, "stream_not_found")
    assert_error(post_json(signed_in(creator), "/api/v1/streams/999999/cancel"), 404, "stream_not_found")
    assert_error(post_json(signed_in(creator), f"/api/v1/streams/{2**70}/cancel"), 404)


def test_viewers_get_a_403_and_anonymous_users_a_401(viewer, client, scheduled_stream):
    path = f"/api/v1/streams/{scheduled_stream.pk}/"
    assert_error(patch_json(signed_in(viewer), path, {"title": "x"}), 403, "permission_denied")
    assert_error(cancel(signed_in(viewer), scheduled_stream), 403, "permission_denied")
    assert_error(patch_json(client, path, {"title": "x"}), 401)
    assert_error(cancel(client, scheduled_stream), 401)
    assert Stream.objects.get(pk=scheduled_stream.pk).status == Stream.Status.SCHEDULED


def test_staff_may_reschedule_and_cancel_any_shops_drop(staff_user, scheduled_stream):
    client = signed_in(staff_user)
    assert patch_json(client, f"/api/v1/streams/{scheduled_stream.pk}/", {"title": "Fixed typo"}).status_code == 200
    assert cancel(client, scheduled_stream).status_code == 200
    assert Stream.objects.get(pk=scheduled_stream.pk).status == Stream.Status.CANCELLED


# -- cancel --------------------------------------------------------------------------------------------


def test_cancelling_a_drop(creator, scheduled_stream, plain_sku, make_deal):
    deal = make_deal(scheduled_stream, plain_sku, opens_at=later(1))
    with captured_events() as events:
        response = cancel(signed_in(creator), scheduled_stream)

    assert response.status_code == 200, response.content
    stream = Stream.objects.get(pk=scheduled_stream.pk)
    assert stream.status == Stream.Status.CANCELLED and stream.cancelled_at is not None and stream.sequence == 1
    data = response.json()
    assert data["status"] == "cancelled" and data["cancelled_at"] == z(stream.cancelled_at)
    deal.refresh_from_db()
    assert deal.status == FlashDeal.Status.CLOSED
    assert events == [
        ("deal.cancelled", {"stream": stream.pk, **deal_row(deal)}, [f"control.{stream.pk}"]),
        (
            "stream.cancelled",
            {
                "stream": stream.pk,
                "shop": creator.shop.pk,
                "status": "cancelled",
                "title": stream.title,
                "starts_at": z(stream.starts_at),
                "ends_at": None,
                "sequence": 1,
                "cancelled_at": z(stream.cancelled_at),
            },
            [f"stream.{stream.pk}", f"shop.{creator.shop.pk}"],
        ),
    ]


def test_cancelling_twice_changes_and_sends_nothing_more(creator, scheduled_stream):
    client = signed_in(creator)
    first = cancel(client, scheduled_stream).json()
    with captured_events() as events:
        again = cancel(client, scheduled_stream)
    assert again.status_code == 200 and again.json() == first and events == []


def test_a_live_drop_is_ended_not_cancelled(creator, live_stream, open_deal):
    with captured_events() as events:
        error = assert_error(cancel(signed_in(creator), live_stream), 409, "stream_live")
    assert "end" in error["message"] and events == []
    open_deal.refresh_from_db()
    assert Stream.objects.get(pk=live_stream.pk).status == Stream.Status.LIVE
    assert open_deal.status == FlashDeal.Status.OPEN


def test_an_ended_drop_stays_ended(creator, live_stream):
    stream_end(stream=live_stream)
    assert_error(cancel(signed_in(creator), live_stream), 409, "stream_ended")
    assert Stream.objects.get(pk=live_stream.pk).status == Stream.Status.ENDED


def test_cancelling_gives_an_open_deals_units_back_to_stock(creator, scheduled_stream, deal_sku, make_deal):
    """An open deal on a drop that is not live yet (opened by hand through the service): the
    cancel closes it and its units go back to the location, as stream_end does."""
    pin_add(stream=scheduled_stream, sku=deal_sku)
    deal = deal_open(deal=make_deal(scheduled_stream, deal_sku, quantity=5))
    assert deal.status == FlashDeal.Status.OPEN
    assert StockLevel.objects.get(sku=deal_sku).available == 25

    with captured_events() as events:
        stream_cancel(stream=scheduled_stream)

    deal.refresh_from_db()
    assert deal.status == FlashDeal.Status.CLOSED and deal.remaining == 0
    assert StockLevel.objects.get(sku=deal_sku).available == 30
    assert [e[0] for e in events] == ["stock.changed", "deal.closed", "stream.cancelled"]
    assert events[0] == expected_stock_changed(deal_sku, 30)


def test_a_cancelled_drop_is_never_started_and_its_deals_never_open(creator, make_stream, plain_sku, make_deal):
    now = timezone.now()
    stream = make_stream(creator.shop, starts_at=now + timedelta(minutes=1), ends_at=now + timedelta(hours=1))
    make_deal(stream, plain_sku, opens_at=now + timedelta(minutes=2))
    stream_cancel(stream=stream)

    with captured_events() as events:
        done = streams_tick(now=now + timedelta(minutes=5))
        streams_tick(now=now + timedelta(hours=2))  # past its end too: it does not become "ended"

    assert done["started"] == 0 and done["opened"] == 0 and done["failed"] == 0
    assert events == []
    stream.refresh_from_db()
    assert stream.status == Stream.Status.CANCELLED and stream.started_at is None
    assert not FlashDeal.objects.filter(stream=stream).exclude(status=FlashDeal.Status.CLOSED).exists()


def test_a_drop_cancelled_while_the_tick_runs_is_neither_started_nor_a_failure(monkeypatch, creator, make_stream):
    from apps.streams import services

    now = timezone.now()
    stream = make_stream(creator.shop, starts_at=now - timedelta(seconds=1))
    original = services.stream_start

    def cancelled_meanwhile(*, stream, now):
        stream_cancel(stream=stream)  # lands after the tick read the drop as scheduled
        return original(stream=stream, now=now)

    monkeypatch.setattr(services, "stream_start", cancelled_meanwhile)
    done = streams_tick(now=now)
    assert done["started"] == 0 and done["failed"] == 0
    assert Stream.objects.get(pk=stream.pk).status == Stream.Status.CANCELLED


def test_a_cancelled_drop_takes_no_start_end_pin_or_deal(creator, scheduled_stream, plain_sku):
    stream_cancel(stream=scheduled_stream)
    client = signed_in(creator)
    base = f"/api/v1/streams/{scheduled_stream.pk}/"
    with captured_events() as events:
        assert_error(post_json(client, base + "start"), 409, "stream_cancelled")
        assert_error(post_json(client, base + "end"), 409, "stream_cancelled")
        assert_error(post_json(client, base + "pins/", {"sku": plain_sku.code}), 409, "stream_cancelled")
        with pytest.raises(StreamIsCancelled):
            deal_schedule(
                stream=scheduled_stream,
                sku=plain_sku,
                price="1.00",
                quantity=1,
                opens_at=later(1),
                closes_at=later(2),
            )
    assert events == []
    assert not Pin.objects.filter(stream=scheduled_stream).exists()
    assert Stream.objects.get(pk=scheduled_stream.pk).status == Stream.Status.CANCELLED


# -- the storefront ------------------------------------------------------------------------------------


def test_a_cancelled_drop_leaves_the_storefront(client, creator, scheduled_stream, live_stream, make_stream):
    kept = make_stream(creator.shop, title="Still on", starts_at=later(5))
    stream_cancel(stream=scheduled_stream)

    listed = {s["id"] for s in client.get("/api/v1/streams/").json()}
    assert listed == {live_stream.pk, kept.pk}
    assert [s["id"] for s in client.get("/api/v1/streams/?status=scheduled").json()] == [kept.pk]
    home = client.get("/").content.decode()
    assert f"/streams/{kept.pk}/" in home and f"/streams/{scheduled_stream.pk}/" not in home

    # Its own page and GET still answer, saying so (an open page polls it).
    assert client.get(f"/api/v1/streams/{scheduled_stream.pk}/").json()["status"] == "cancelled"
    page = client.get(f"/streams/{scheduled_stream.pk}/")
    assert page.status_code == 200 and "This drop was cancelled" in page.content.decode()


def test_the_control_room_of_a_cancelled_drop_says_so_with_its_controls_off(creator, scheduled_stream):
    stream_cancel(stream=scheduled_stream)
    page = signed_in(creator).get(f"/streams/{scheduled_stream.pk}/control/").content.decode()
    assert 'data-status="cancelled"' in page and "Cancelled" in page
    assert 'id="start-btn" disabled' in page and 'id="end-btn" disabled' in page
    assert re.search(r"cancelled\s*<time", page)


def test_the_media_server_refuses_a_cancelled_drop(client, scheduled_stream, settings):
    from apps.streams.media import MediaDecision, media_authorize

    stream_cancel(stream=scheduled_stream)
    body = {"action": "publish", "path": f"live/{scheduled_stream.pk}", "password": scheduled_stream.ingest_token}
    assert media_authorize(body) == MediaDecision.FORBIDDEN


# -- the admin writes through the same services -----------------------------------------------------------


@pytest.fixture
def admin_client(creator):
    return signed_in(creator)


def test_the_admin_refuses_an_end_before_the_start_with_the_services_words(admin_client, scheduled_stream):
    data = page_form(admin_client, stream_url(scheduled_stream))
    set_time(data, "ends_at", scheduled_stream.starts_at - timedelta(hours=1))
    with captured_events() as events:
        response = post(admin_client, scheduled_stream, data)
    assert "A drop must end after it starts." in page_errors(response)
    assert events == [] and Stream.objects.get(pk=scheduled_stream.pk).ends_at is None


def test_the_admin_does_not_move_a_live_drops_start(admin_client, live_stream):
    data = page_form(admin_client, stream_url(live_stream))
    set_time(data, "starts_at", later(5))
    response = post(admin_client, live_stream, data)
    assert "The drop is live" in page_errors(response)
    assert Stream.objects.get(pk=live_stream.pk).starts_at == live_stream.starts_at


def test_the_admin_reschedule_bumps_the_sequence(admin_client, scheduled_stream):
    data = page_form(admin_client, stream_url(scheduled_stream))
    new_start = later(72)
    set_time(data, "starts_at", new_start)
    with captured_events() as events:
        assert post(admin_client, scheduled_stream, data).status_code == 302
    stream = Stream.objects.get(pk=scheduled_stream.pk)
    assert stream.starts_at == new_start and stream.sequence == 1
    assert [(e[0], e[1]["changed"], e[1]["starts_at"]) for e in events] == [
        ("stream.updated", ["starts_at"], z(new_start))
    ]


def test_the_admin_cancels_selected_drops_and_says_which_it_could_not(admin_client, scheduled_stream, live_stream):
    response = admin_client.post(
        "/admin/streams/stream/",
        {"action": "cancel_drops", "_selected_action": [scheduled_stream.pk, live_stream.pk]},
        follow=True,
    )
    texts = message_texts(response)
    assert "1 drop(s) cancelled." in texts
    assert any(text.startswith(f"{live_stream}: The drop is live") for text in texts), texts
    assert Stream.objects.get(pk=scheduled_stream.pk).status == Stream.Status.CANCELLED
    assert Stream.objects.get(pk=live_stream.pk).status == Stream.Status.LIVE


def test_a_cancelled_drop_is_read_only_in_the_admin(admin_client, scheduled_stream, plain_sku):
    pin_add(stream=scheduled_stream, sku=plain_sku)
    stream_cancel(stream=scheduled_stream)
    page = admin_client.get(stream_url(scheduled_stream))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode() and "Cancelled" in page.content.decode()
    response = admin_client.post(stream_url(scheduled_stream), {"title": "Back on", "_save": "Save"})
    assert response.status_code == 403
    assert Stream.objects.get(pk=scheduled_stream.pk).title == scheduled_stream.title
