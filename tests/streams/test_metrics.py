"""The live figures of /metrics (docs/operations.md, "Metrics"): viewers per live stream
(the presence count every process keeps, read at scrape time) and the fan-out lag of the
stock frames a stream's broadcaster writes, through the real ASGI application."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from apps.catalog.services import stock_adjust
from tests.helpers import WAIT, parse_scrape
from tests.ops.test_asgi import call
from tests.streams.sockets import open_viewer, receive_until

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


async def scrape():
    status, _, body = await call("/metrics")
    assert status == 200
    return parse_scrape(body.decode())


def _take(sku):
    with transaction.atomic():
        stock_adjust(sku=sku, add=-1)


async def test_viewers_of_a_live_stream_and_the_lag_of_its_stock_frames(stream_setup, close_db_after):
    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    before = await scrape()
    assert before.value("cc_stream_viewers", stream=str(stream.pk)) == 0
    assert {"stream": str(stream.pk)} in before.labelled("cc_stream_viewers")  # live: a series at 0
    viewers = [await open_viewer(stream) for _ in range(2)]
    assert (await scrape()).value("cc_stream_viewers", stream=str(stream.pk)) == 2

    await sync_to_async(_take)(sku)
    for comm, _ in viewers:
        await receive_until(comm, lambda got: got[-1]["type"] == "stock", timeout=WAIT)
    # Observed right after the frame's last write: poll, never sleep.
    deadline = time.monotonic() + WAIT
    while (after := await scrape()).value("cc_fanout_lag_seconds_count") == before.value(
        "cc_fanout_lag_seconds_count"
    ) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    # One frame for both sockets: one observation, of a lag that is real and small.
    frames = after.value("cc_fanout_lag_seconds_count") - before.value("cc_fanout_lag_seconds_count")
    lag = after.value("cc_fanout_lag_seconds_sum") - before.value("cc_fanout_lag_seconds_sum")
    assert frames == 1 and 0 < lag < WAIT

    for comm, _ in viewers:
        await comm.disconnect()
    assert (await scrape()).value("cc_stream_viewers", stream=str(stream.pk)) == 0
