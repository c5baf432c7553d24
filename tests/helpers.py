"""Helpers shared by test modules (fixtures live in conftest.py files)."""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connection

from creatorcommerce.spine.models import OutboxEvent

WORKERS = 40


def run_concurrently(fn, args_list, *, workers: int = WORKERS):
    """Run ``fn(*args)`` for every args in parallel threads, released together by a barrier;
    each thread has, and closes, its own database connection."""
    barrier = threading.Barrier(min(workers, len(args_list)))

    def call(args):
        try:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=10)
            return fn(*args)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(call, args_list))


def last_event_id() -> int:
    last = OutboxEvent.objects.order_by("-id").first()
    return last.pk if last else 0


def events_since(mark: int, *types: str) -> list[OutboxEvent]:
    qs = OutboxEvent.objects.filter(pk__gt=mark).order_by("id")
    return list(qs.filter(type__in=types) if types else qs)


def use_redis_layer(settings, redis_url: str, kind: str):
    """Make the default channel layer channels-redis (``kind``: "pubsub" or "core") on the
    real Redis for one test; returns the layer."""
    from channels.layers import channel_layers

    backend = {
        "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "core": "channels_redis.core.RedisChannelLayer",
    }[kind]
    # Hosts as creatorcommerce/settings.py configures them (core: a socket timeout above its
    # 5 s blocking pop).
    hosts = [{"address": redis_url, "socket_timeout": 30}] if kind == "core" else [redis_url]
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": backend, "CONFIG": {"hosts": hosts, "prefix": f"test{os.getpid()}"}}
    }
    channel_layers.backends.clear()
    return channel_layers["default"]
