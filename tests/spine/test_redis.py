"""The spine on the real channels-redis layer: a connected consumer receives the event."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.testing import WebsocketCommunicator
from django.db import transaction

from creatorcommerce.spine.events import emit
from tests.helpers import WAIT

GROUP = "test.spine.redis"
pytestmark = pytest.mark.usefixtures("unchecked_events")  # throwaway event types


class EventEcho(AsyncJsonWebsocketConsumer):
    async def connect(self):
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def test_pinged(self, message):
        await self.send_json({"type": message["type"], "payload": message["payload"], "event": message["event"]})


def _emit(n):
    with transaction.atomic():
        return emit("test.pinged", {"n": n}, groups=[GROUP])


@pytest.mark.redis
@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_consumer_on_channels_redis_receives_committed_event(redis_channel_layer, close_db_after):
    assert type(redis_channel_layer).__name__ in {"RedisChannelLayer", "RedisPubSubChannelLayer"}
    communicator = WebsocketCommunicator(EventEcho.as_asgi(), "/ws/test/")
    connected, _ = await communicator.connect()
    assert connected
    event = await sync_to_async(_emit)(3)
    message = await communicator.receive_json_from(timeout=WAIT)
    assert message == {"type": "test.pinged", "payload": {"n": 3}, "event": str(event.uuid)}
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


@pytest.mark.redis
@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_rolled_back_event_never_reaches_redis_consumer(redis_channel_layer, close_db_after):
    communicator = WebsocketCommunicator(EventEcho.as_asgi(), "/ws/test/")
    await communicator.connect()

    def rolled_back():
        with transaction.atomic():
            emit("test.pinged", {"n": 1}, groups=[GROUP])
            raise RuntimeError("rollback")

    with pytest.raises(RuntimeError):
        await sync_to_async(rolled_back)()
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_handler_runs_through_the_real_broker(settings):
    """With a broker configured, on-commit enqueues to Redis and a real worker applies it."""
    import time

    from celery.contrib.testing.worker import start_worker

    from creatorcommerce.celery import app
    from creatorcommerce.spine.models import HandlerRun
    from creatorcommerce.spine.registry import handler, unregister

    assert settings.CELERY_BROKER_URL.startswith("redis://")
    seen = []

    @handler("test.brokered", name="tests.spine.brokered")
    def brokered(event):
        seen.append(event.pk)

    app.conf.task_always_eager = False
    app.control.purge()
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            with transaction.atomic():
                event = emit("test.brokered", {})
            deadline = time.monotonic() + 10
            while not seen and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        unregister("tests.spine.brokered")
    assert seen == [event.pk]
    assert HandlerRun.objects.filter(event=event, handler="tests.spine.brokered").count() == 1


@pytest.mark.redis
@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_idle_consumer_survives_past_the_redis_timeouts(redis_channel_layer, close_db_after):
    """A Channels consumer listening to a quiet group must not be dropped. On the core layer
    redis-py's 5 s socket timeout races channels-redis's 5 s blocking pop and kills idle
    consumers (1011; docs/performance.md); the default pub/sub layer must not. Viewer sockets
    have no channel of their own and survive on both layers
    (tests/streams/test_broadcast.py::test_an_idle_viewer_survives_past_the_redis_timeouts)."""
    import asyncio

    if type(redis_channel_layer).__name__ == "RedisChannelLayer":
        pytest.skip("known issue of Channels consumers (the control room) on the core layer; viewers are immune")
    communicator = WebsocketCommunicator(EventEcho.as_asgi(), "/ws/test/")
    await communicator.connect()
    await asyncio.sleep(6.5)
    event = await sync_to_async(_emit)(9)
    message = await communicator.receive_json_from(timeout=WAIT)
    assert message["event"] == str(event.uuid)
    await communicator.disconnect()


@pytest.mark.redis
def test_the_broker_transport_publishes_through_one_client(settings):
    """creatorcommerce/celery_transport.py: a Redis broker's publishes reuse one redis-py
    client (kombu built one per publish), and the messages are real: they are in the queue."""
    import redis
    from kombu import Producer

    from creatorcommerce.celery import app
    from creatorcommerce.celery_transport import Channel

    assert settings.CELERY_BROKER_URL.startswith("redis://")
    queue = "tests.transport"
    clients = []
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        assert isinstance(channel, Channel)
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)
        for n in range(3):
            with channel.conn_or_acquire() as client:
                clients.append(client)
            Producer(channel).publish({"n": n}, routing_key=queue, serializer="json")
        assert len({id(client) for client in clients}) == 1
        assert redis.Redis.from_url(settings.CELERY_BROKER_URL).llen(queue) == 3
        channel._pool = None  # what kombu does on a reconnect: a new pool, so a new client
        with channel.conn_or_acquire() as client:
            assert client is not clients[0] and client.connection_pool is channel.pool
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_commits_that_queue_up_reach_the_broker_as_one_message_and_a_worker_runs_them(settings):
    """The enqueuing thread sends what queued up while it was busy as one run_handlers
    message (creatorcommerce/spine/events.py); a real worker applies every pair once."""
    import json
    import threading
    import time

    import redis
    from celery.contrib.testing.worker import start_worker

    from creatorcommerce.celery import app
    from creatorcommerce.spine import events
    from creatorcommerce.spine.models import HandlerRun
    from creatorcommerce.spine.registry import handler, unregister

    seen = []

    @handler("test.batched", name="tests.spine.batched")
    def batched(event):
        seen.append(event.pk)

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    app.conf.task_always_eager = False
    app.control.purge()
    enqueuer = events._enqueuer()
    gate = threading.Event()
    original = events.enqueue_batch
    try:
        # Hold the thread in its first publish, commit three more meanwhile, let it go.
        def held(batch):
            gate.wait(WAIT)
            original(batch)

        events.enqueue_batch = held
        with transaction.atomic():
            first = emit("test.batched", {"n": 0})
        deadline = time.monotonic() + WAIT  # until the thread took it and waits at the gate
        while not enqueuer.queue.empty() and time.monotonic() < deadline:
            time.sleep(0.01)
        later = []
        for n in range(1, 4):
            with transaction.atomic():
                later.append(emit("test.batched", {"n": n}))
        sent_before = enqueuer.messages
        gate.set()
        deadline = time.monotonic() + WAIT
        while enqueuer.messages < sent_before + 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        messages = [json.loads(raw) for raw in broker.lrange("celery", 0, -1)]
        tasks = sorted(message["headers"]["task"] for message in messages)
        assert tasks == ["creatorcommerce.spine.tasks.run_handler", "creatorcommerce.spine.tasks.run_handlers"]
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            deadline = time.monotonic() + WAIT
            while len(seen) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        events.enqueue_batch = original
        gate.set()
        unregister("tests.spine.batched")
    assert sorted(seen) == sorted([first.pk] + [event.pk for event in later])
    assert HandlerRun.objects.filter(handler="tests.spine.batched").count() == 4


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_commits_within_the_linger_go_as_one_message_and_flush_ends_it(settings):
    """After a commit the enqueueing thread waits SPINE_ENQUEUE_LINGER_SECONDS for more
    (fewer broker messages under load); a flush() does not wait for the linger."""
    import json
    import time

    import redis

    from creatorcommerce.celery import app
    from creatorcommerce.spine import events
    from creatorcommerce.spine.registry import handler, unregister

    @handler("test.lingered", name="tests.spine.lingered")
    def lingered(event):
        pass

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    app.conf.task_always_eager = False
    app.control.purge()
    enqueuer = events._enqueuer()
    assert enqueuer.flush(timeout=WAIT)
    try:
        settings.SPINE_ENQUEUE_LINGER_SECONDS = 0.5
        for n in range(3):
            with transaction.atomic():
                emit("test.lingered", {"n": n})
        sent_before = enqueuer.messages
        deadline = time.monotonic() + WAIT
        while enqueuer.messages == sent_before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)  # a second message, if the linger did not hold, would be out by now
        bodies = [json.loads(raw) for raw in broker.lrange("celery", 0, -1)]
        assert [body["headers"]["task"] for body in bodies] == ["creatorcommerce.spine.tasks.run_handlers"]
        assert enqueuer.messages == sent_before + 1
        app.control.purge()

        settings.SPINE_ENQUEUE_LINGER_SECONDS = 30
        with transaction.atomic():
            emit("test.lingered", {"n": 9})
        started = time.monotonic()
        assert enqueuer.flush(timeout=WAIT)
        assert time.monotonic() - started < WAIT
        assert broker.llen("celery") == 1
    finally:
        enqueuer.flush(timeout=WAIT)
        app.control.purge()
        unregister("tests.spine.lingered")


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_process_that_commits_and_exits_at_once_still_reaches_the_broker(settings):
    """The enqueueing thread is a daemon; at exit the process waits (up to 5 s) until what
    it committed was handed to the broker, instead of leaving it to redeliver_pending."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import redis
    from django.db import connection

    from creatorcommerce.celery import app

    app.control.purge()
    database = connection.settings_dict
    from urllib.parse import quote

    host, port = database["HOST"] or "127.0.0.1", database["PORT"] or 5432
    login = quote(database["USER"]) + (f":{quote(database['PASSWORD'])}" if database.get("PASSWORD") else "")
    url = f"postgres://{login}@{host}:{port}/{database['NAME']}"
    script = (
        "from django.db import transaction\n"
        "from creatorcommerce.celery import app\n"
        "from creatorcommerce.spine.events import emit\n"
        "from creatorcommerce.spine.registry import handler\n"
        "handler('test.exiting', name='tests.spine.exiting')(lambda event: None)\n"
        "assert not app.conf.task_always_eager\n"
        "with transaction.atomic():\n"
        "    event = emit('test.exiting', {})\n"
        "print('EVENT', event.pk)\n"
    )
    env = {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
    env["SPINE_CHECK_EVENTS"] = "0"  # a throwaway event type
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    event_id = int(done.stdout.split("EVENT", 1)[1].split()[0])
    messages = [json.loads(raw) for raw in redis.Redis.from_url(settings.CELERY_BROKER_URL).lrange("celery", 0, -1)]
    assert [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in messages] == [
        ("creatorcommerce.spine.tasks.run_handler", f"({event_id}, 'tests.spine.exiting')")
    ]
    app.control.purge()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_handler_with_its_own_queue_gets_its_runs_there(settings):
    """``handler(queue=...)`` (the device cues' ``cues``): a commit's runs of that handler go
    to that queue in a message of their own, the others' to the default queue; so does a
    redelivery."""
    import json
    from datetime import timedelta

    import redis
    from django.utils import timezone

    from creatorcommerce.celery import app
    from creatorcommerce.spine import events
    from creatorcommerce.spine.models import OutboxEvent
    from creatorcommerce.spine.registry import handler, queue_for, unregister
    from creatorcommerce.spine.tasks import redeliver_pending

    handler("test.routed", name="tests.spine.routed_plain")(lambda event: None)
    handler("test.routed", name="tests.spine.routed_own", queue="cues")(lambda event: None)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    def queued(queue):
        return sorted(
            (m["headers"]["task"], m["headers"]["argsrepr"]) for m in map(json.loads, broker.lrange(queue, 0, -1))
        )

    app.conf.task_always_eager = False
    app.control.purge()
    broker.delete("cues")
    try:
        assert queue_for("tests.spine.routed_own") == "cues" and queue_for("tests.spine.routed_plain") is None
        with transaction.atomic():
            event = emit("test.routed", {})
        assert events._enqueuer().flush(timeout=WAIT)
        run = "creatorcommerce.spine.tasks.run_handler"
        assert queued("celery") == [(run, f"({event.pk}, 'tests.spine.routed_plain')")]
        assert queued("cues") == [(run, f"({event.pk}, 'tests.spine.routed_own')")]
        app.control.purge()
        broker.delete("cues")
        OutboxEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(seconds=60))
        assert redeliver_pending(min_age_seconds=30) == 2
        assert queued("celery") == [(run, f"({event.pk}, 'tests.spine.routed_plain')")]
        assert queued("cues") == [(run, f"({event.pk}, 'tests.spine.routed_own')")]
    finally:
        app.control.purge()
        broker.delete("cues")
        unregister("tests.spine.routed_plain")
        unregister("tests.spine.routed_own")
