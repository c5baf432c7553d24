"""Events every web process hears: a per-process listener for state kept in memory.

Some state is worth keeping in each web process's memory, current with the spine's events:
which stock rows and deals are at zero (creatorcommerce/soldout.py) answers a sold-out buy
without the database. ``hear(event_type, fn)`` (in an app's ``handlers.py``, as
``coalesce()``) makes ``fn(payload)`` run in every web process for each event of that type
committed anywhere on the node:

- in the process that committed it, at once, on the committing thread, right after the
  commit (``heard_here``, called by ``deliver``): the embedded mode (one process, the
  in-memory channel layer) needs nothing more;
- in every other web process, from the channel layer: ``fan_out`` sends events of a heard
  type to one more group, ``PROCESS_GROUP`` (coalesced as the event's other sends are; the
  group is not stored with the event), and ``listen_here()``, called by the ASGI handler
  on each request, keeps one task per event loop that joins that group and calls the
  ``fn``\\ s with what arrives. The committing process hears its own events a second time
  this way: ``fn`` must be idempotent and must tolerate old news (versions).

A message lost on the way (Redis restarting, a full channel) is not redelivered: what is
kept from these events must be bounded in time by its owner (``SOLDOUT_MEMORY_SECONDS``).
``fn`` runs on an event loop or on a request's thread: it must be cheap, must not block and
must be thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable

from channels.layers import InMemoryChannelLayer, get_channel_layer

log = logging.getLogger(__name__)

PROCESS_GROUP = "spine.processes"
# channels-redis' core layer forgets a group's members after a day (``group_expiry``): the
# listener joins again well before.
REJOIN_SECONDS = 600.0
RETRY_FIRST, RETRY_MOST = 0.1, 1.0

_heard: dict[str, list[Callable[[dict], None]]] = {}


def hear(event_type: str, fn: Callable[[dict], None]) -> None:
    """Call ``fn(payload)`` in every web process for each committed ``event_type``."""
    fns = _heard.setdefault(event_type, [])
    if fn not in fns:
        fns.append(fn)


def heard(event_type: str) -> bool:
    return event_type in _heard


def crosses_processes(layer) -> bool:
    """Whether ``layer`` reaches other processes (the in-memory one does not)."""
    return layer is not None and not isinstance(layer, InMemoryChannelLayer)


def _call(event_type: str, payload: dict) -> None:
    for fn in _heard.get(event_type, ()):
        try:
            fn(payload)
        except Exception:  # one listener's bug must not stop the others, nor the commit's delivery
            log.exception("listener %r of %s failed", fn, event_type)


def heard_here(events) -> None:
    """This process's own commit: its events of a heard type, to their listeners, now."""
    for event in events:
        if event.type in _heard:
            _call(event.type, event.payload)


# -- one listener per event loop ------------------------------------------------------------------

_listeners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task] = weakref.WeakKeyDictionary()


def listen_here() -> None:
    """Start this event loop's listener if it has none (call on the loop; cheap when it has
    one). Nothing to do without listeners or without a layer that crosses processes."""
    if not _heard:
        return
    loop = asyncio.get_running_loop()
    task = _listeners.get(loop)
    if task is not None and not task.done():
        return
    layer = get_channel_layer()
    if not crosses_processes(layer):
        return
    _listeners[loop] = loop.create_task(_listen(layer), name="spine-process-listener")


def listening() -> bool:
    """Whether this event loop's listener runs and has joined the group (tests, diagnostics)."""
    task = _listeners.get(asyncio.get_running_loop())
    return task is not None and not task.done() and getattr(task, "joined", False)


async def _retrying(what, *args):
    delay = RETRY_FIRST
    while True:
        try:
            result = await what(*args)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # Redis going away, or the core layer's idle TimeoutError: keep trying.
            timeout = isinstance(error, TimeoutError) or type(error).__name__ == "TimeoutError"
            log.log(logging.DEBUG if timeout else logging.WARNING, "process listener: %r", error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MOST)
            continue
        # Subscribing (redis-py under channels-redis) can swallow a cancellation that comes
        # while it runs; the task still says it is being cancelled: stop, or a loop that is
        # closing waits for this task for ever.
        if asyncio.current_task().cancelling():
            raise asyncio.CancelledError
        return result


async def _rejoin(layer, channel: str) -> None:
    while True:
        await asyncio.sleep(REJOIN_SECONDS)
        await _retrying(layer.group_add, PROCESS_GROUP, channel)


async def _listen(layer) -> None:
    channel = await _retrying(layer.new_channel)
    await _retrying(layer.group_add, PROCESS_GROUP, channel)
    asyncio.current_task().joined = True
    rejoin = asyncio.ensure_future(_rejoin(layer, channel))
    try:
        while True:
            message = await _retrying(layer.receive, channel)
            payload = message.get("payload")
            if isinstance(payload, dict):
                _call(message.get("type", ""), payload)
    finally:
        rejoin.cancel()
