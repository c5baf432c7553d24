"""The per-process viewer broadcast (apps/streams/broadcast.py): one subscriber per stream and
process, one encoded frame per message for all of its viewer sockets. Through the real ASGI
application, on the in-memory layer and on both channels-redis layers with the real Redis
(the ``layer`` fixture, tests/streams/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import os
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from apps.catalog.models import StockLevel
from apps.catalog.services import sku_set_price, stock_adjust
from apps.streams.broadcast import broadcaster_for
from apps.streams.models import Stream
from apps.streams.services import pin_add, pin_remove
from creatorcommerce.asgi import application
from creatorcommerce.spine import fanout
from tests.factories import make_sku
from tests.helpers import WAIT
from tests.streams.sockets import collect, open_viewer, receive_until, until

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


def _take(sku, n=1, *, each=1):
    for _ in range(n):
        with transaction.atomic():
            stock_adjust(sku=sku, add=-each)


take = sync_to_async(_take)


async def group_members(layer, group: str) -> set[str]:
    """The channels in ``group``, as the layer itself records them."""
    kind = type(layer).__name__
    if kind == "InMemoryChannelLayer":
        return set(layer.groups.get(group, {}))
    if kind == "RedisPubSubChannelLayer":
        loop_layer = layer._get_layer()
        return set(loop_layer.groups.get(loop_layer._get_group_channel_name(group), set()))
    connection = layer.connection(layer.consistent_hash(group))
    return {member.decode() for member in await connection.zrange(layer._group_key(group), 0, -1)}


async def stock_until(comm, value: int, *, sku: str = "PIN-0", seconds: float = WAIT) -> list[dict]:
    """The socket's messages up to the ``stock`` message carrying ``value`` for ``sku``."""
    return await receive_until(
        comm,
        lambda got: got[-1]["type"] == "stock" and got[-1]["stock"].get(sku) == value,
        timeout=seconds,
    )


def stock_values(messages, sku="PIN-0") -> list[int]:
    return [m["stock"][sku] for m in messages if m["type"] == "stock" and sku in m["stock"]]


async def test_viewers_share_one_subscription_and_get_the_same_frames(layer, stream_setup, close_db_after):
    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    viewers = [await open_viewer(stream) for _ in range(4)]
    broadcaster = broadcaster_for(stream.pk)
    assert broadcaster is not None and broadcaster.members == 4 and len(broadcaster.sockets) == 4
    # One channel in the stream's and the pinned SKUs' groups, however many viewers.
    assert await group_members(layer, f"stream.{stream.pk}") == {broadcaster.channel}
    assert await group_members(layer, f"sku.{sku.pk}") == {broadcaster.channel}
    assert [snapshot["seq"] for _, snapshot in viewers] == [0, 0, 0, 0]

    frames_before = broadcaster.frames
    await take(sku)
    await sync_to_async(sku_set_price)(sku_id=sku.pk, price=Decimal("12.50"))
    received = []
    for comm, _ in viewers:
        got = [await comm.receive_output(timeout=WAIT) for _ in range(2)]
        assert [m["type"] for m in got] == ["websocket.send", "websocket.send"]
        received.append([m["text"] for m in got])
    assert await viewers[0][0].receive_nothing(timeout=0.2)
    # Encoded once per message: every socket was handed the very same string.
    assert broadcaster.frames - frames_before == 2
    for texts in received[1:]:
        assert all(mine is first for mine, first in zip(texts, received[0], strict=True))
    assert sorted(json.loads(text)["type"] for text in received[0]) == ["price", "stock"]
    for comm, _ in viewers:
        await comm.disconnect()


async def test_a_burst_reaches_every_viewer_coalesced_with_rising_seq_and_the_final_value(
    layer, stream_setup, settings, close_db_after
):
    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    await sync_to_async(StockLevel.objects.filter(sku=sku).update)(available=300)
    viewers = [await open_viewer(stream) for _ in range(3)]
    started = asyncio.get_running_loop().time()
    await take(sku, 200)
    elapsed = asyncio.get_running_loop().time() - started
    seen = [[m for m in await stock_until(comm, 100) if m["type"] == "stock"] for comm, _ in viewers]
    for messages in seen:
        seqs = [m["seq"] for m in messages]
        assert seqs == sorted(set(seqs)) and seqs[0] > 0
        assert len(messages) <= int((elapsed + 1.0) * settings.STREAM_PUSHES_PER_SECOND) + 2
        values = stock_values(messages)
        assert values == sorted(values, reverse=True) and values[-1] == 100
    # Every viewer got the same messages (one broadcast), and nothing after the final one.
    assert seen[0] == seen[1] == seen[2]
    for comm, _ in viewers:
        assert not stock_values(await collect(comm, 0.3))
        await comm.disconnect()


async def test_pin_changes_move_the_broadcasters_groups(layer, stream_setup, close_db_after):
    stream, (old, kept) = stream_setup["stream"], stream_setup["skus"]
    comm, _ = await open_viewer(stream)
    broadcaster = broadcaster_for(stream.pk)
    new = await sync_to_async(make_sku)(stream.shop, code="PIN-NEW", stock=7)
    await sync_to_async(pin_add)(stream=stream, sku=new)
    pin = await comm.receive_json_from(timeout=WAIT)
    assert pin["type"] == "pin" and [p["sku"] for p in pin["pins"]] == ["PIN-0", "PIN-1", "PIN-NEW"]
    assert f"sku.{new.pk}" in broadcaster.groups
    await take(new)
    assert stock_values(await stock_until(comm, 6, sku="PIN-NEW"), "PIN-NEW") == [6]

    await sync_to_async(pin_remove)(stream=stream, sku=old)
    pin = await comm.receive_json_from(timeout=WAIT)
    assert pin["type"] == "pin" and [p["sku"] for p in pin["pins"]] == ["PIN-1", "PIN-NEW"]
    assert f"sku.{old.pk}" not in broadcaster.groups
    assert broadcaster.channel not in await group_members(layer, f"sku.{old.pk}")
    await take(old)  # no longer pinned: nothing
    await take(kept)  # still pinned: arrives, after whatever the unpinned one would have sent
    messages = await stock_until(comm, 49, sku="PIN-1")
    assert [m["stock"] for m in messages if m["type"] == "stock"] == [{"PIN-1": 49}]
    await comm.disconnect()


async def test_the_last_viewer_out_tears_the_broadcaster_down(layer, stream_setup, close_db_after):
    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    (a, _), (b, _), (c, _) = [await open_viewer(stream) for _ in range(3)]
    broadcaster = broadcaster_for(stream.pk)
    channel = broadcaster.channel
    await a.disconnect()
    await b.disconnect()
    assert broadcaster_for(stream.pk) is broadcaster
    assert broadcaster.members == 1 and len(broadcaster.sockets) == 1
    await take(sku)
    assert stock_values(await stock_until(c, 49)) == [49]  # the one left still gets everything

    await c.disconnect()
    assert broadcaster_for(stream.pk) is None
    assert broadcaster.task.done() and not broadcaster.groups
    assert channel not in await group_members(layer, f"stream.{stream.pk}")
    assert channel not in await group_members(layer, f"sku.{sku.pk}")

    # The next viewer starts a new one, with its own channel, and is served.
    d, snapshot = await open_viewer(stream)
    again = broadcaster_for(stream.pk)
    assert again is not broadcaster and again.channel != channel and snapshot["stock"]["PIN-0"] == 49
    await take(sku)
    assert stock_values(await stock_until(d, 48)) == [48]
    await d.disconnect()


class BreakableSend:
    """ASGI middleware: once ``broken``, its socket's sends raise, as an ASGI server's do
    for a connection that went away (daphne: autobahn's ``Disconnected``, "Attempt to send on
    a closed protocol"; uvicorn: ``ClientDisconnected``)."""

    def __init__(self, app):
        self.app = app
        self.broken = False

    async def __call__(self, scope, receive, send):
        async def guarded(message):
            if self.broken and message["type"] == "websocket.send":
                raise ConnectionResetError("the client went away")
            await send(message)

        return await self.app(scope, receive, guarded)


async def test_a_viewer_whose_send_fails_is_dropped_and_the_others_still_get_the_frame(
    layer, stream_setup, close_db_after
):
    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    breakable = BreakableSend(application)
    first, _ = await open_viewer(stream)
    broken, _ = await open_viewer(stream, app=breakable)
    last, _ = await open_viewer(stream)
    broadcaster = broadcaster_for(stream.pk)
    breakable.broken = True
    await take(sku)
    for comm in (first, last):
        assert stock_values(await stock_until(comm, 49)) == [49]
    assert len(broadcaster.sockets) == 2 and broadcaster.members == 3
    await take(sku)
    for comm in (first, last):
        assert stock_values(await stock_until(comm, 48)) == [48]
    await broken.disconnect()  # it still leaves cleanly
    assert broadcaster.members == 2
    await first.disconnect()
    await last.disconnect()
    assert broadcaster_for(stream.pk) is None


async def test_a_snapshot_newer_than_the_broadcaster_reaches_everyone_and_nothing_goes_back(
    layer, stream_setup, settings, close_db_after
):
    """The second viewer's snapshot reads a count whose event is still on its way (held by
    the source coalescer): its snapshot shows that count, the first viewer is pushed it at once, and
    the late event changes nothing."""
    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    # Long enough that the second event is still held when the test looks (however slow the
    # machine); the test lets it go itself.
    settings.SPINE_COALESCE_SECONDS = 120.0
    first, _ = await open_viewer(stream)
    await take(sku)  # the first of a burst leaves the source at once
    first_seen = await stock_until(first, 49)
    await take(sku)  # held at the source
    second, snapshot = await open_viewer(stream)
    assert snapshot["stock"]["PIN-0"] == 48 and snapshot["pins"][0]["available"] == 48
    assert snapshot["stream"]["pins"][0]["available"] == 48
    first_seen += await stock_until(first, 48, seconds=WAIT)
    # The first viewer got 48 from the second's snapshot: its event has not left the source.
    source = fanout._coalescer(get_channel_layer())
    held = [m["payload"]["available"] for m in source.pending[f"sku.{sku.pk}"].values()]
    assert held == [48]
    settings.SPINE_COALESCE_SECONDS = 0.1
    for group in list(source.timers):  # let it go now, as its timer would have
        source.timers[group].cancel()
        await source.flush(group)
    await take(sku)
    first_seen += await stock_until(first, 47, seconds=WAIT)
    second_seen = await stock_until(second, 47, seconds=WAIT)
    assert stock_values(first_seen) == [49, 48, 47]
    assert set(stock_values(second_seen)) <= {48, 47} and stock_values(second_seen)[-1] == 47
    for seen, since in ((first_seen, 0), (second_seen, snapshot["seq"])):
        seqs = [m["seq"] for m in seen if m["type"] == "stock"]
        assert seqs == sorted(set(seqs)) and seqs[0] > since
    await first.disconnect()
    await second.disconnect()


async def test_viewers_joining_during_a_burst_never_see_a_value_go_back(layer, stream_setup, close_db_after):
    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    await sync_to_async(StockLevel.objects.filter(sku=sku).update)(available=400)
    anchor, _ = await open_viewer(stream)

    async def burst():
        # Five changes at a time: asgiref runs sync code on one thread, so the viewers'
        # snapshot reads slot in between, while the events of earlier changes are arriving.
        for _ in range(30):
            await take(sku, 5)

    running = asyncio.ensure_future(burst())
    joined = []
    while not running.done() and len(joined) < 8:
        joined.append(await open_viewer(stream))
    await running
    assert len(joined) >= 2, "the burst ended before viewers joined"
    for comm, snapshot in [(anchor, None), *joined]:
        if snapshot is not None and snapshot["stock"]["PIN-0"] == 250:
            messages = await collect(comm, 0.3)  # joined after the last change had been read
        else:
            messages = await stock_until(comm, 250, seconds=WAIT)
        values = ([snapshot["stock"]["PIN-0"]] if snapshot else []) + stock_values(messages)
        assert values == sorted(values, reverse=True), values  # counts only fall in a burst
        seqs = [m["seq"] for m in messages if m["type"] == "stock"]
        assert seqs == sorted(set(seqs)) and (snapshot is None or not seqs or seqs[0] > snapshot["seq"])
        await comm.disconnect()


async def test_the_receive_loop_survives_an_event_it_cannot_handle(layer, stream_setup, close_db_after):
    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    comm, _ = await open_viewer(stream)
    broadcaster = broadcaster_for(stream.pk)
    await layer.group_send(f"stream.{stream.pk}", {"type": "stock.changed", "payload": {"no": "sku"}})
    await until(lambda: broadcaster.handle_errors == 1, what="the bad event")
    await take(sku)
    assert stock_values(await stock_until(comm, 49)) == [49]
    await comm.disconnect()


@pytest.mark.redis
async def test_the_receive_loop_survives_the_layer_failing(stream_setup, settings, close_db_after):
    """The core layer with a Redis socket timeout shorter than its 5 s blocking pop: every
    idle receive raises TimeoutError (the core layer's known idle issue, made quick). Channels
    consumers die of it with 1011; the broadcaster retries and its viewers stay."""
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": os.environ["REDIS_URL"], "socket_timeout": 0.3}],
                "prefix": f"test{os.getpid()}",
            },
        }
    }
    channel_layers.backends.clear()
    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    comm, _ = await open_viewer(stream)
    broadcaster = broadcaster_for(stream.pk)
    await until(lambda: broadcaster.receive_errors >= 2, timeout=WAIT, what="receive errors")
    assert not broadcaster.task.done()
    await take(sku)
    assert stock_values(await stock_until(comm, 49, seconds=WAIT)) == [49]
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=WAIT) == {"type": "pong"}
    await comm.disconnect()


@pytest.mark.redis
async def test_an_idle_viewer_survives_past_the_redis_timeouts(redis_channel_layer, stream_setup, close_db_after):
    """A viewer watching a quiet stream is not dropped, on either channels-redis layer
    (tests/spine/test_redis.py: a plain Channels consumer on the core layer can be)."""
    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    comm, _ = await open_viewer(stream)
    assert await comm.receive_nothing(timeout=6.5, interval=0.1)  # quiet for longer than the 5 s timeouts
    await take(sku)
    assert stock_values(await stock_until(comm, 49)) == [49]
    await comm.disconnect()


async def test_a_viewer_on_another_stream_gets_its_own_broadcaster(layer, stream_setup, close_db_after):
    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    other = await sync_to_async(Stream.objects.create)(shop=stream.shop, title="Other", starts_at=stream.starts_at)
    await sync_to_async(pin_add)(stream=other, sku=sku)
    here, _ = await open_viewer(stream)
    there, _ = await open_viewer(other)
    assert broadcaster_for(stream.pk) is not broadcaster_for(other.pk)
    await take(sku)  # pinned on both
    assert stock_values(await stock_until(here, 49)) == [49]
    assert stock_values(await stock_until(there, 49)) == [49]
    await here.disconnect()
    await there.disconnect()


async def test_viewers_connecting_during_a_snapshot_read_share_it_and_miss_nothing(
    layer, stream_setup, monkeypatch, close_db_after
):
    """A reconnect storm: sockets that connect while a snapshot read is under way wait for
    that read instead of each making their own (one read for all of them), and a change
    committed after the read is merged into every one of their snapshots. A socket that
    connects after the read finished reads again."""
    from apps.streams.consumers import ViewerConsumer

    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    real = ViewerConsumer._snapshot
    read_done, release = asyncio.Event(), asyncio.Event()

    async def held(self):
        snapshot = await real(self)
        read_done.set()
        await release.wait()  # the read has its rows; the change below comes after it
        return snapshot

    monkeypatch.setattr(ViewerConsumer, "_snapshot", held)
    opening = [asyncio.ensure_future(open_viewer(stream)) for _ in range(5)]
    await until(lambda: (b := broadcaster_for(stream.pk)) is not None and b.members == 5, what="five viewers waiting")
    await asyncio.wait_for(read_done.wait(), WAIT)
    broadcaster = broadcaster_for(stream.pk)
    await take(sku)  # 50 -> 49, after the shared read
    await until(lambda: broadcaster.feed.stock_values.get("PIN-0") == 49, what="the change at the broadcaster")
    release.set()
    viewers = await asyncio.gather(*opening)
    assert broadcaster.reads == 1
    assert [snapshot["stock"]["PIN-0"] for _, snapshot in viewers] == [49] * 5
    assert {snapshot["pins"][0]["available"] for _, snapshot in viewers} == {49}

    monkeypatch.setattr(ViewerConsumer, "_snapshot", real)
    late, snapshot = await open_viewer(stream)
    assert broadcaster.reads == 2 and snapshot["stock"]["PIN-0"] == 49
    await take(sku)
    for comm, _ in [*viewers, (late, None)]:
        assert stock_values(await stock_until(comm, 48)) == [48]
        await comm.disconnect()
