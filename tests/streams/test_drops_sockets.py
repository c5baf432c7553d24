"""A drop cancelled while its pages are open (docs/streams.md, "Creators' API for drops"): the
viewers' sockets get ``{"type": "stream", "status": "cancelled"}`` (from ``stream.cancelled``,
relayed by the stream's feed as ``stream.deleted`` is), and so does the control room; a
socket opened afterwards starts from a snapshot that says so. On the in-memory layer and on
both channels-redis layers against the real Redis."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.streams.models import Stream
from apps.streams.services import pin_add, stream_cancel
from tests.factories import CreatorFactory, make_sku
from tests.streams.sockets import open_viewer, receive_until
from tests.streams.test_consumers import _control_socket

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


def _scheduled_drop() -> dict:
    creator = CreatorFactory()
    stream = Stream.objects.create(shop=creator.shop, title="Next week", starts_at=timezone.now() + timedelta(days=7))
    pin_add(stream=stream, sku=make_sku(creator.shop, code="TEE", stock=5))
    from creatorcommerce.spine.fanout import drain

    drain()  # the set-up's own events leave before a socket subscribes
    return {"creator": creator, "stream": stream}


async def test_viewers_and_the_control_room_see_a_drop_cancelled(layer, close_db_after):
    drop = await sync_to_async(_scheduled_drop)()
    stream = drop["stream"]
    viewer, snapshot = await open_viewer(stream)
    assert snapshot["stream"]["status"] == "scheduled"
    control = await _control_socket(stream, drop["creator"])
    await control.receive_json_from()  # its snapshot

    await sync_to_async(stream_cancel)(stream=stream)

    seen = await receive_until(viewer, lambda got: got[-1]["type"] == "stream")
    assert seen[-1] == {"type": "stream", "status": "cancelled"}
    seen = await receive_until(control, lambda got: got[-1]["type"] == "stream")
    assert seen[-1] == {"type": "stream", "status": "cancelled"}
    await viewer.disconnect()
    await control.disconnect()

    late, snapshot = await open_viewer(stream)
    assert snapshot["stream"]["status"] == "cancelled"
    await late.disconnect()
