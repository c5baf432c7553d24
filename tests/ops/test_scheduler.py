"""The embedded scheduler runs the beat schedule inside the web process (no broker)."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.streams.models import Stream
from creatorcommerce.scheduler import run_schedule
from tests.factories import CreatorFactory

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


async def test_due_stream_starts_within_a_second(close_db_after):
    creator = await sync_to_async(CreatorFactory)()
    stream = await sync_to_async(Stream.objects.create)(
        shop=await sync_to_async(lambda: creator.shop)(), title="Due", starts_at=timezone.now() - timedelta(seconds=1)
    )
    schedule = {"tick": {"task": "apps.streams.tasks.tick", "schedule": timedelta(seconds=1)}}
    runner = asyncio.ensure_future(run_schedule(schedule, tick=0.05))
    try:
        for _ in range(40):
            await asyncio.sleep(0.05)
            if (await Stream.objects.aget(pk=stream.pk)).status == Stream.Status.LIVE:
                break
    finally:
        runner.cancel()
    assert (await Stream.objects.aget(pk=stream.pk)).status == Stream.Status.LIVE
