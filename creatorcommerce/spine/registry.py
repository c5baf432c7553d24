"""Declarative registry of event handlers.

    @handler("order.placed")
    def award_first_purchase_badge(event): ...

A handler gets the OutboxEvent (re-fetched by id in a Celery task) and runs inside a
transaction together with the record that it ran, so delivering an event twice applies it
once. A handler that raises is rolled back and retried.

A handler that talks to the outside world (a payment gateway, an MQTT broker) must not hold
a transaction open while it does: declare it ``atomic=False``. It then runs outside any
transaction, at least once, and must itself be idempotent (the run is recorded after it
returns, so a crash in between repeats it).

A handler that acts on only some events of its types (device cues: only where a shop has a
rule for the type) may say so with ``wants(event_type) -> bool``, a cheap in-process check:
where it answers no, no task is enqueued at all (the buy path then hands its broker
nothing), and ``redeliver_within`` bounds how old an event ``redeliver_pending`` still
hands it (a cue for an event older than its timeout could only fail).

A handler whose work must never wait behind other tasks (device cues) names its own Celery
``queue``: its runs are enqueued there, in messages of their own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta

_by_type: dict[str, list[str]] = defaultdict(list)
_by_name: dict[str, Callable] = {}
_non_atomic: set[str] = set()
_wants: dict[str, Callable[[str], bool]] = {}
_redeliver_within: dict[str, timedelta] = {}
_queues: dict[str, str] = {}


def handler(
    *event_types: str,
    name: str | None = None,
    atomic: bool = True,
    wants: Callable[[str], bool] | None = None,
    redeliver_within: timedelta | None = None,
    queue: str | None = None,
):
    if not event_types:
        raise ValueError("handler() needs at least one event type")

    def register(fn: Callable) -> Callable:
        key = name or f"{fn.__module__}.{fn.__qualname__}"
        existing = _by_name.get(key)
        if existing is not None and existing is not fn:
            raise ValueError(f"two handlers are registered as {key!r}")
        _by_name[key] = fn
        if not atomic:
            _non_atomic.add(key)
        if wants is not None:
            _wants[key] = wants
        if redeliver_within is not None:
            _redeliver_within[key] = redeliver_within
        if queue is not None:
            _queues[key] = queue
        for event_type in event_types:
            if key not in _by_type[event_type]:
                _by_type[event_type].append(key)
        return fn

    return register


def handlers_for(event_type: str) -> list[str]:
    """The handlers an event of this type goes to now (those whose ``wants`` says yes)."""
    names = _by_type.get(event_type)
    if not names:
        return []
    if not _wants:
        return list(names)
    return [name for name in names if (wants := _wants.get(name)) is None or wants(event_type)]


def get_handler(name: str) -> Callable | None:
    return _by_name.get(name)


def is_atomic(name: str) -> bool:
    return name not in _non_atomic


def subscribed_types() -> dict[str, list[str]]:
    """Every type with handlers that want it now (``redeliver_pending`` looks for these)."""
    return {t: names for t in list(_by_type) if (names := handlers_for(t))}


def redeliver_within(name: str) -> timedelta | None:
    return _redeliver_within.get(name)


def queue_for(name: str) -> str | None:
    """The Celery queue a handler's runs go to; None: the task's own route (``celery``)."""
    return _queues.get(name)


def unregister(name: str) -> None:
    """Remove a handler (tests register throwaway handlers)."""
    _by_name.pop(name, None)
    _non_atomic.discard(name)
    _wants.pop(name, None)
    _redeliver_within.pop(name, None)
    _queues.pop(name, None)
    for names in _by_type.values():
        if name in names:
            names.remove(name)
