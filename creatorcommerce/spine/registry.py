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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

_by_type: dict[str, list[str]] = defaultdict(list)
_by_name: dict[str, Callable] = {}
_non_atomic: set[str] = set()


def handler(*event_types: str, name: str | None = None, atomic: bool = True):
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
        for event_type in event_types:
            if key not in _by_type[event_type]:
                _by_type[event_type].append(key)
        return fn

    return register


def handlers_for(event_type: str) -> list[str]:
    return list(_by_type.get(event_type, ()))


def get_handler(name: str) -> Callable | None:
    return _by_name.get(name)


def is_atomic(name: str) -> bool:
    return name not in _non_atomic


def subscribed_types() -> dict[str, list[str]]:
    return {t: list(names) for t, names in _by_type.items() if names}


def unregister(name: str) -> None:
    """Remove a handler (tests register throwaway handlers)."""
    _by_name.pop(name, None)
    _non_atomic.discard(name)
    for names in _by_type.values():
        if name in names:
            names.remove(name)
