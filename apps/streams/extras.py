"""Snapshot extras and viewer relays: what apps above streams add to a viewer socket, without
streams importing them (docs/streams.md, "Snapshot extras and viewer relays";
docs/architecture.md, "Layers").

- ``snapshot_extra(fn)``: ``fn(viewer: Viewer) -> dict | None``, called once per viewer
  socket, in a thread (it may read the database, and it is on the hot path of every
  connect: keep it cheap when it has nothing to say), after the snapshot was read (a read
  several sockets may share: the extras are this viewer's own). The keys it returns
  are added to that viewer's ``snapshot`` message (e.g. the experiments app's
  ``"experience"``, docs/experiments.md). A failing extra is logged and left out: it never
  costs a viewer the snapshot.
- ``viewer_relay(*event_types)(fn)``: ``fn(message) -> dict | None`` turns a spine event
  delivered to ``stream.<id>`` into one message for every viewer of the stream (the same
  frame for all of them). It runs on the socket's event loop and must not touch the
  database. A relayed message ``{"type": k, k: {...}}`` that arrives between a new
  viewer's snapshot read and its welcome is merged into that viewer's snapshot field ``k``
  (a dict update), so a snapshot is never older than the messages that follow it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Viewer:
    """Who a viewer socket is: the signed-in user, or else the anonymous session."""

    stream_id: int
    shop_id: int
    user_id: int | None
    session_key: str | None


_extras: list[Callable] = []
_relays: dict[str, Callable] = {}


def snapshot_extra(fn: Callable) -> Callable:
    if fn not in _extras:
        _extras.append(fn)
    return fn


def snapshot_extras(viewer: Viewer) -> dict:
    """Every registered extra's fields for ``viewer``, merged in registration order."""
    out: dict = {}
    for fn in _extras:
        try:
            fields = fn(viewer)
        except Exception:
            log.exception("snapshot extra %s failed for stream %s", getattr(fn, "__qualname__", fn), viewer.stream_id)
            continue
        if fields:
            out.update(fields)
    return out


def viewer_relay(*event_types: str) -> Callable:
    """Register ``relay`` for spine events of ``event_types`` reaching a stream's viewers."""

    def register(fn: Callable) -> Callable:
        for event_type in event_types:
            _relays[event_type] = fn
        return fn

    return register


def viewer_relay_for(event_type: str) -> Callable | None:
    return _relays.get(event_type)
