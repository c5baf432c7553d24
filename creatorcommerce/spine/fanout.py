"""Fan-out of committed events to Channels groups, with counters coalesced at the source.

Sends never block the request that committed: inside the ASGI server they are scheduled on
the server's own event loop; anywhere else (a Celery worker, a command) on one background
loop per process. The layer is only ever used from the loop that owns it.

Counter events (``stock.changed``, ``deal.changed``: declared with ``coalesce()``) carry
absolute values. A burst of them would fill every consumer's channel (channels drop what
does not fit, and the dropped one may be the last), so per process, group and key only the
newest is kept and sent at most every ``SPINE_COALESCE_SECONDS``; the first of a burst
goes at once and the last one always goes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable

from asgiref.sync import SyncToAsync
from channels.layers import get_channel_layer
from django.conf import settings

from creatorcommerce.process import PerProcess

from .processes import PROCESS_GROUP, crosses_processes, heard

log = logging.getLogger(__name__)

_coalesced: dict[str, Callable[[dict], object]] = {}


def coalesce(event_type: str, *, key: Callable[[dict], object]) -> None:
    """Declare that events of ``event_type`` carry absolute state, identified by
    ``key(payload)`` and ordered by ``payload["version"]``: only the newest need be sent."""
    _coalesced[event_type] = key


def fan_out(events) -> None:
    """Send committed events (one transaction's, in order) to their groups, from one task
    on the loop: one crossing from the committing thread, however many events."""
    layer = get_channel_layer()
    if layer is None:
        return
    # Events every web process hears (spine/processes.py) go to their group too; over the
    # in-memory layer there is no other process to tell.
    everywhere = [PROCESS_GROUP] if crosses_processes(layer) else []
    sends = []
    committed_at = None
    for event in events:
        groups = event.groups + everywhere if everywhere and heard(event.type) else event.groups
        if not groups:
            continue
        # When the commit happened (this runs on commit), for clients and benchmarks
        # measuring commit-to-screen latency.
        committed_at = committed_at or time.time()
        message = event.as_message()
        message["committed_at"] = committed_at
        sends.append((event.type, groups, message))
    if not sends:
        return
    loop = _server_loop() or _background_loop()
    future = asyncio.run_coroutine_threadsafe(_dispatch(layer, sends), loop)
    future.add_done_callback(_log_failure)


async def _dispatch(layer, sends: list[tuple[str, list[str], dict]]) -> None:
    for event_type, groups, message in sends:
        key_of = _coalesced.get(event_type)
        for group in groups:
            if key_of is not None:
                _coalescer(layer).submit(group, (event_type, key_of(message["payload"])), message)
                continue
            try:
                await layer.group_send(group, message)
            except Exception:  # the outbox keeps the event; a viewer resyncs from a snapshot
                log.exception("fan-out of %s to %s failed", message.get("event"), group)


class _Coalescer:
    """Per loop: the newest pending message per (group, key); one timer per group."""

    def __init__(self, layer):
        self.layer = layer
        self.pending: dict[str, dict[tuple, dict]] = {}
        self.last_sent: dict[str, float] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}

    def submit(self, group: str, key: tuple, message: dict) -> None:
        slot = self.pending.setdefault(group, {})
        held = slot.get(key)
        if held is None or message["payload"].get("version", 0) >= held["payload"].get("version", 0):
            slot[key] = message
        if group in self.timers:
            return
        loop = asyncio.get_running_loop()
        interval = settings.SPINE_COALESCE_SECONDS
        delay = max(0.0, self.last_sent.get(group, 0.0) + interval - loop.time())
        self.timers[group] = loop.call_later(delay, lambda: asyncio.ensure_future(self.flush(group)))

    async def flush(self, group: str) -> None:
        self.timers.pop(group, None)
        self.last_sent[group] = asyncio.get_running_loop().time()
        for message in self.pending.pop(group, {}).values():
            try:
                await self.layer.group_send(group, message)
            except Exception:
                log.exception("fan-out to %s failed", group)


_coalescers: dict[tuple[int, int], _Coalescer] = {}


def _coalescer(layer) -> _Coalescer:
    key = (id(asyncio.get_running_loop()), id(layer))
    if key not in _coalescers:
        _coalescers[key] = _Coalescer(layer)
    return _coalescers[key]


def _server_loop():
    """The ASGI server's event loop, when called from a thread asgiref runs sync code in."""
    try:
        asyncio.get_running_loop()
        return None
    except RuntimeError:
        pass
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return loop if loop is not None and loop.is_running() else None


def _start_background_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="spine-fanout", daemon=True).start()
    return loop


# One daemon thread with an event loop per process.
_background: PerProcess[asyncio.AbstractEventLoop] = PerProcess(
    _start_background_loop, stale=lambda loop: loop.is_closed()
)


def _background_loop() -> asyncio.AbstractEventLoop:
    return _background.get()


def _log_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("fan-out failed", exc_info=future.exception())


def drain(timeout: float = 10.0) -> None:
    """Wait until the background loop has sent what was scheduled (tests, commands that
    exit right after emitting)."""
    loop = _background.current()
    if loop is None:
        return

    async def settle():
        for _ in range(3):
            await asyncio.sleep(settings.SPINE_COALESCE_SECONDS)

    asyncio.run_coroutine_threadsafe(settle(), loop).result(timeout)
