"""Snapshot extras and viewer relays (apps/streams/extras.py; docs/streams.md): what apps
above streams add to a viewer socket, without streams importing them."""

from __future__ import annotations

import pytest

from apps.streams import extras
from apps.streams.feed import StreamFeed
from tests.streams.sockets import open_viewer

pytestmark = [pytest.mark.anyio]


@pytest.fixture
def registries(monkeypatch):
    monkeypatch.setattr(extras, "_extras", [])
    monkeypatch.setattr(extras, "_relays", {})


def test_extras_merge_and_a_failing_one_is_left_out(registries):
    seen = []

    @extras.snapshot_extra
    def first(viewer):
        seen.append(viewer)
        return {"a": 1}

    @extras.snapshot_extra
    def broken(viewer):
        raise RuntimeError("boom")

    @extras.snapshot_extra
    def nothing(viewer):
        return None

    viewer = extras.Viewer(stream_id=1, shop_id=2, user_id=None, session_key="k")
    assert extras.snapshot_extras(viewer) == {"a": 1}
    assert seen == [viewer]


async def test_a_relayed_message_reaches_sockets_and_patches_a_snapshot_read_meanwhile(registries):
    @extras.viewer_relay("thing.changed")
    def relay(message):
        return {"type": "thing", "thing": {message["payload"]["slot"]: "control"}}

    published = []

    async def publish(messages):
        published.extend(messages)

    async def regroup(join, leave):
        pass

    feed = StreamFeed(1, publish=publish, regroup=regroup)
    since = feed.changes  # a viewer notes this, then reads its snapshot...
    await feed.handle({"type": "thing.changed", "payload": {"slot": "x"}})  # ...while this arrives
    assert published == [{"type": "thing", "thing": {"x": "control"}}]
    read = {"thing": {"x": "confetti", "y": "off"}, "other": 1}
    assert feed.patched(read, since=since) == {"thing": {"x": "control", "y": "off"}, "other": 1}
    assert feed.patched(read, since=feed.changes) == read  # read after it: nothing to patch
    await feed.handle({"type": "unknown.type", "payload": {}})  # no handler, no relay: ignored
    assert len(published) == 1


@pytest.mark.django_db(transaction=True)
async def test_a_viewer_socket_gets_the_extras_in_its_snapshot(registries, layer, stream_setup, close_db_after):
    @extras.snapshot_extra
    def hello(viewer):
        return {"hello": {"stream": viewer.stream_id, "signed_in": viewer.user_id is not None}}

    stream = stream_setup["stream"]
    comm, snapshot = await open_viewer(stream)
    assert snapshot["hello"] == {"stream": stream.pk, "signed_in": False}
    assert "shop_id" not in snapshot  # the consumer's own, never sent
    await comm.disconnect()
