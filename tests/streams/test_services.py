"""Stream services: the lifecycle on the scheduler's clock, pins and presence, and the
events each change sends (checked in the outbox, with their groups)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.catalog.models import StockLevel
from apps.streams.exceptions import InvalidStreamTransition, SkuNotInShop
from apps.streams.models import FlashDeal, Pin, Stream
from apps.streams.services import (
    pin_add,
    pin_remove,
    presence_count,
    presence_join,
    presence_leave,
    presence_publish,
    stream_end,
    stream_start,
    streams_tick,
)
from tests.factories import make_sku
from tests.helpers import events_since, last_event_id

pytestmark = pytest.mark.django_db


def available(sku) -> int:
    return StockLevel.objects.get(sku=sku, location__is_default=True).available


@pytest.fixture
def t0():
    """A start time in the future, whole seconds: the tick is driven by the test's clock."""
    return (timezone.now() + timedelta(days=1)).replace(microsecond=0)


# -- lifecycle -----------------------------------------------------------------------------


def test_tick_starts_a_scheduled_stream_at_starts_at_and_not_before(creator, make_stream, t0):
    stream = make_stream(creator.shop, starts_at=t0)
    mark = last_event_id()

    assert streams_tick(now=t0 - timedelta(seconds=1))["started"] == 0
    stream.refresh_from_db()
    assert stream.status == Stream.Status.SCHEDULED and stream.started_at is None
    assert events_since(mark) == []

    assert streams_tick(now=t0)["started"] == 1
    stream.refresh_from_db()
    assert stream.status == Stream.Status.LIVE
    assert stream.started_at == t0
    [started] = events_since(mark, "stream.started")
    assert started.payload == {"stream": stream.pk, "shop": creator.shop.pk, "status": "live"}
    assert started.groups == [f"stream.{stream.pk}", f"shop.{creator.shop.pk}"]

    # The next second's tick finds nothing to do: no second event.
    assert streams_tick(now=t0 + timedelta(seconds=1)) == {
        "started": 0,
        "ended": 0,
        "opened": 0,
        "closed": 0,
        "failed": 0,
    }
    assert len(events_since(mark, "stream.started")) == 1


def test_tick_ends_a_live_stream_at_ends_at(creator, make_stream, t0):
    stream = make_stream(creator.shop, starts_at=t0, ends_at=t0 + timedelta(hours=1))
    streams_tick(now=t0)
    mark = last_event_id()

    assert streams_tick(now=t0 + timedelta(hours=1) - timedelta(seconds=1))["ended"] == 0
    stream.refresh_from_db()
    assert stream.status == Stream.Status.LIVE

    assert streams_tick(now=t0 + timedelta(hours=1))["ended"] == 1
    stream.refresh_from_db()
    assert stream.status == Stream.Status.ENDED
    assert stream.ended_at == t0 + timedelta(hours=1)
    [ended] = events_since(mark, "stream.ended")
    assert ended.payload == {"stream": stream.pk, "shop": creator.shop.pk, "status": "ended"}
    assert ended.groups == [f"stream.{stream.pk}", f"shop.{creator.shop.pk}"]

    assert streams_tick(now=t0 + timedelta(hours=2))["ended"] == 0
    assert len(events_since(mark, "stream.ended")) == 1


def test_stream_whose_window_passed_before_any_tick_ends_without_going_live(creator, make_stream, t0):
    stream = make_stream(creator.shop, starts_at=t0, ends_at=t0 + timedelta(minutes=30))
    mark = last_event_id()
    done = streams_tick(now=t0 + timedelta(hours=1))
    assert done["started"] == 0 and done["ended"] == 1
    stream.refresh_from_db()
    assert stream.status == Stream.Status.ENDED and stream.started_at is None
    assert [e.type for e in events_since(mark)] == ["stream.ended"]


def test_tick_leaves_streams_of_the_future_alone(creator, make_stream, t0):
    later = make_stream(creator.shop, starts_at=t0 + timedelta(hours=3))
    streams_tick(now=t0)
    later.refresh_from_db()
    assert later.status == Stream.Status.SCHEDULED


def test_ended_stream_cannot_start_again(scheduled_stream):
    stream_end(stream=scheduled_stream)
    mark = last_event_id()
    with pytest.raises(InvalidStreamTransition) as caught:
        stream_start(stream=scheduled_stream)
    assert caught.value.status == 409 and caught.value.code == "invalid_stream_transition"
    scheduled_stream.refresh_from_db()
    assert scheduled_stream.status == Stream.Status.ENDED
    assert events_since(mark) == []


def test_start_and_end_are_idempotent(scheduled_stream):
    stream_start(stream=scheduled_stream)
    mark = last_event_id()
    assert stream_start(stream=scheduled_stream).status == Stream.Status.LIVE
    assert events_since(mark) == []
    stream_end(stream=scheduled_stream)
    mark = last_event_id()
    assert stream_end(stream=scheduled_stream).status == Stream.Status.ENDED
    assert events_since(mark) == []


def test_a_scheduled_stream_can_be_called_off(scheduled_stream):
    stream_end(stream=scheduled_stream)
    scheduled_stream.refresh_from_db()
    assert scheduled_stream.status == Stream.Status.ENDED


def test_manual_start_opens_the_deals_that_are_due(creator, scheduled_stream, make_deal):
    sku = make_sku(creator.shop, stock=10)
    now = timezone.now()
    due = make_deal(scheduled_stream, sku, opens_at=now - timedelta(minutes=1), quantity=4)
    later = make_deal(
        scheduled_stream, make_sku(creator.shop, stock=10), opens_at=now + timedelta(minutes=10), quantity=4
    )
    stream_start(stream=scheduled_stream, now=now)
    due.refresh_from_db()
    later.refresh_from_db()
    assert due.status == FlashDeal.Status.OPEN and due.remaining == 4
    assert later.status == FlashDeal.Status.SCHEDULED and later.remaining == 0
    assert available(sku) == 6


def test_ending_a_stream_closes_its_deals_and_gives_the_units_back(
    creator, live_stream, open_deal, deal_sku, make_deal
):
    assert available(deal_sku) == 25
    other = make_sku(creator.shop, stock=10)
    not_yet = make_deal(live_stream, other, opens_at=timezone.now() + timedelta(minutes=30))
    mark = last_event_id()

    stream_end(stream=live_stream)

    open_deal.refresh_from_db()
    not_yet.refresh_from_db()
    assert open_deal.status == FlashDeal.Status.CLOSED and open_deal.remaining == 0
    assert not_yet.status == FlashDeal.Status.CLOSED
    assert available(deal_sku) == 30
    assert available(other) == 10  # the deal that never opened never touched stock
    types = [e.type for e in events_since(mark)]
    # The deal that never opened is cancelled, for the control room (viewers never saw it).
    assert types == ["stock.changed", "deal.closed", "deal.cancelled", "stream.ended"]
    assert events_since(mark, "deal.cancelled")[0].payload["id"] == not_yet.pk


# -- pins ----------------------------------------------------------------------------------


def test_pins_are_appended_in_order_and_each_change_sends_the_whole_list(creator, scheduled_stream):
    first, second, third = (make_sku(creator.shop, stock=n) for n in (1, 2, 3))
    mark = last_event_id()
    pin_add(stream=scheduled_stream, sku=first)
    pin_add(stream=scheduled_stream, sku=second)
    pin_add(stream=scheduled_stream, sku=third, position=0)  # explicitly to the front

    changes = events_since(mark, "pins.changed")
    assert len(changes) == 3
    assert all(e.groups == [f"stream.{scheduled_stream.pk}"] for e in changes)
    assert [p["sku"] for p in changes[0].payload["pins"]] == [first.code]
    assert [p["sku"] for p in changes[1].payload["pins"]] == [first.code, second.code]
    assert [p["sku"] for p in changes[2].payload["pins"]] == [third.code, first.code, second.code]
    assert changes[2].payload["stream"] == scheduled_stream.pk

    entry = changes[2].payload["pins"][1]
    assert entry["title"] == first.display_title
    assert entry["price"] == str(first.price)
    assert entry["available"] == 1
    assert entry["deal"] is None

    removed_mark = last_event_id()
    assert pin_remove(stream=scheduled_stream, sku=first) is True
    [removed] = events_since(removed_mark, "pins.changed")
    assert [p["sku"] for p in removed.payload["pins"]] == [third.code, second.code]
    assert list(Pin.objects.filter(stream=scheduled_stream).values_list("sku__code", flat=True)) == [
        third.code,
        second.code,
    ]


def test_pinning_twice_is_a_no_op(creator, scheduled_stream):
    sku = make_sku(creator.shop)
    pin = pin_add(stream=scheduled_stream, sku=sku)
    mark = last_event_id()
    assert pin_add(stream=scheduled_stream, sku=sku, position=9) == pin
    assert Pin.objects.filter(stream=scheduled_stream).count() == 1
    assert Pin.objects.get().position == pin.position
    assert events_since(mark) == []


def test_unpinning_what_is_not_pinned_is_a_no_op(creator, scheduled_stream):
    mark = last_event_id()
    assert pin_remove(stream=scheduled_stream, sku=make_sku(creator.shop)) is False
    assert events_since(mark, "pins.changed") == []


def test_pinning_another_shops_sku_is_refused(scheduled_stream, other_creator):
    foreign = make_sku(other_creator.shop)
    mark = last_event_id()
    with pytest.raises(SkuNotInShop) as caught:
        pin_add(stream=scheduled_stream, sku=foreign)
    assert caught.value.code == "sku_not_in_shop" and 400 <= caught.value.status < 500
    assert not Pin.objects.exists()
    assert events_since(mark) == []


def test_pins_carry_the_open_deal(live_stream, open_deal, deal_sku, plain_sku):
    mark = last_event_id()
    pin_remove(stream=live_stream, sku=plain_sku)
    [change] = events_since(mark, "pins.changed")
    [entry] = change.payload["pins"]
    assert entry["sku"] == deal_sku.code
    assert entry["available"] == 25
    assert entry["deal"]["price"] == "12.00"
    assert entry["deal"]["remaining"] == 5
    assert entry["deal"]["per_buyer_limit"] == 2
    assert entry["deal"]["ends_at"] == open_deal.closes_at.isoformat().replace("+00:00", "Z")


# -- presence ------------------------------------------------------------------------------


def test_presence_counts_joins_and_leaves_and_never_goes_negative(live_stream):
    sid = live_stream.pk
    assert presence_count(stream_id=sid) == 0
    presence_join(stream_id=sid)
    presence_join(stream_id=sid)
    presence_join(stream_id=sid)
    assert presence_count(stream_id=sid) == 3
    presence_leave(stream_id=sid)
    assert presence_count(stream_id=sid) == 2
    for _ in range(4):
        presence_leave(stream_id=sid)
    assert presence_count(stream_id=sid) == 0
    presence_join(stream_id=sid)
    assert presence_count(stream_id=sid) == 1


def test_presence_of_a_stream_nobody_counted_yet(scheduled_stream):
    assert presence_count(stream_id=scheduled_stream.pk) == 0
    presence_leave(stream_id=scheduled_stream.pk)  # a leave without a join does not fail
    presence_join(stream_id=scheduled_stream.pk)
    assert presence_count(stream_id=scheduled_stream.pk) == 1


def test_presence_is_published_only_when_the_count_changed(live_stream):
    sid = live_stream.pk
    presence_join(stream_id=sid)
    presence_join(stream_id=sid)
    mark = last_event_id()

    assert presence_publish() == 1
    [counted] = events_since(mark, "presence.counted")
    assert counted.payload == {"stream": sid, "viewers": 2}
    assert counted.groups == [f"stream.{sid}"]

    mark = last_event_id()
    assert presence_publish() == 0
    assert events_since(mark) == []

    presence_join(stream_id=sid)
    presence_leave(stream_id=sid)  # back to 2 before the next beat: nothing to say
    assert presence_publish() == 0

    presence_leave(stream_id=sid)
    assert presence_publish() == 1
    [counted] = events_since(mark, "presence.counted")
    assert counted.payload["viewers"] == 1


def test_presence_is_published_for_live_streams_only(live_stream, scheduled_stream):
    presence_join(stream_id=scheduled_stream.pk)
    mark = last_event_id()
    presence_publish()
    assert {e.payload["stream"] for e in events_since(mark, "presence.counted")} == {live_stream.pk}


def test_viewers_waiting_before_the_start_are_still_counted_after_it(scheduled_stream):
    presence_join(stream_id=scheduled_stream.pk)
    presence_join(stream_id=scheduled_stream.pk)
    stream_start(stream=scheduled_stream)
    assert presence_count(stream_id=scheduled_stream.pk) == 2


@pytest.mark.django_db
def test_one_broken_deal_does_not_stop_the_tick(live_stream, make_deal, plain_sku, deal_sku, monkeypatch):
    """A deal whose closing fails is logged and skipped; the rest of the tick still runs."""
    from apps.streams import services

    now = timezone.now()
    broken = make_deal(live_stream, plain_sku, opens_at=now - timedelta(hours=2), closes_at=now - timedelta(hours=1))
    FlashDeal.objects.filter(pk=broken.pk).update(status=FlashDeal.Status.OPEN)
    due = make_deal(live_stream, deal_sku, opens_at=now - timedelta(minutes=1), closes_at=now + timedelta(hours=1))
    FlashDeal.objects.filter(stream=live_stream, status=FlashDeal.Status.OPEN).exclude(pk=broken.pk).update(
        status=FlashDeal.Status.CLOSED
    )
    real_close = services.deal_close

    def failing_close(*, deal, now=None):
        if deal.pk == broken.pk:
            raise RuntimeError("corrupt deal")
        return real_close(deal=deal, now=now)

    monkeypatch.setattr(services, "deal_close", failing_close)
    done = services.streams_tick(now=now)
    assert done["failed"] == 1
    due.refresh_from_db()
    assert due.status == FlashDeal.Status.OPEN


@pytest.mark.django_db
def test_moving_an_open_deals_end_emits_deal_changed(live_stream, open_deal):
    from apps.streams.services import deal_close_at_set

    mark = last_event_id()
    later = open_deal.closes_at + timedelta(minutes=30)
    deal_close_at_set(deal=open_deal, closes_at=later)
    (event,) = events_since(mark, "deal.changed")
    assert event.payload["deal"]["ends_at"] == later.isoformat().replace("+00:00", "Z")


_VIEWER_PROCESS = """
import sys, django
django.setup()
from apps.streams.services import presence_join
presence_join(stream_id=int(sys.argv[1]))
presence_join(stream_id=int(sys.argv[1]))
print("joined", flush=True)
sys.stdin.read()  # hold the sockets until killed
"""


@pytest.mark.redis
def test_a_redis_blip_while_a_viewer_joins_neither_fails_the_socket_nor_leaks_the_count(live_stream, monkeypatch):
    """A join whose Redis write fails used to raise inside connect(), before the socket was
    marked counted: its leave never ran and the heartbeat republished the inflated count."""
    import redis

    from apps.streams import services

    sid = live_stream.pk
    write = services._presence_write

    def down(local, stream_ids):
        raise redis.ConnectionError("Redis is restarting")

    monkeypatch.setattr(services, "_presence_write", down)
    presence_join(stream_id=sid)  # no exception: the socket opens
    monkeypatch.setattr(services, "_presence_write", write)
    presence_join(stream_id=sid)  # Redis is back: this write carries the whole local count
    assert presence_count(stream_id=sid) == 2
    presence_leave(stream_id=sid)
    presence_leave(stream_id=sid)
    assert presence_count(stream_id=sid) == 0


@pytest.mark.redis
def test_viewers_of_a_killed_process_stop_counting(live_stream, redis_url, settings):
    """A web process that dies without closing its sockets (SIGKILL: nothing runs) stops
    counting once its heartbeat expires; a live process's viewers keep counting meanwhile."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from tests.helpers import WAIT

    sid = live_stream.pk
    presence_join(stream_id=sid)  # this process's viewer, alive throughout
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "creatorcommerce.settings",
        "STREAM_PRESENCE_TTL_SECONDS": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", _VIEWER_PROCESS, str(sid)],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout.readline().strip() == b"joined"
        assert presence_count(stream_id=sid) == 3
        # Alive: its heartbeat (every third of its 1 s TTL) keeps it counted past the TTL.
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            assert presence_count(stream_id=sid) == 3
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=WAIT)
        deadline = time.monotonic() + WAIT
        while presence_count(stream_id=sid) != 1:
            assert time.monotonic() < deadline, "the killed process's viewers are still counted"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        presence_leave(stream_id=sid)
    assert presence_count(stream_id=sid) == 0


@pytest.mark.redis
def test_viewers_joining_at_once_share_their_redis_writes(live_stream, monkeypatch):
    """A reconnect storm's joins used to write Redis one after another under the lock, one
    write each; now a write carries every change made before it began and the joins wait for
    that write (apps/streams/services.py, ``_presence_sync``). The first write here waits
    until all 50 joins have counted themselves in the process, so the rest share one write."""
    import threading

    from apps.streams import services
    from tests.helpers import wait_for

    sid, n = live_stream.pk, 50
    local = services._local_presence.get()
    start = local.changes
    write = services._presence_write
    writes: list[set] = []

    def shared(local_, stream_ids):
        if not writes:
            wait_for(lambda: local.changes >= start + n, message="every join counted locally")
        writes.append(set(stream_ids))
        write(local_, stream_ids)

    monkeypatch.setattr(services, "_presence_write", shared)
    joins = [threading.Thread(target=presence_join, kwargs={"stream_id": sid}) for _ in range(n)]
    for join in joins:
        join.start()
    for join in joins:
        join.join()
    try:
        assert 2 <= len(writes) <= 3  # the first join's, then the other 49's (a heartbeat's at most)
        assert presence_count(stream_id=sid) == n
        raw = services._presence_redis().hget(services._presence_hash_key(sid), local.id)
        assert int(raw) == n  # in Redis, for the other processes, when the joins returned
    finally:
        for _ in range(n):
            presence_leave(stream_id=sid)
    assert presence_count(stream_id=sid) == 0
