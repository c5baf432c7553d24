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
- ``stream_experience(varies=..., variant=...)``: experiences decided per stream rather than
  per viewer, for micro-interactions a whole stream's room shares (the devices' urgency
  light, docs/experiments.md, "Stream-level slots"). ``varies(slot, shop_id) -> bool`` is a
  cheap check in memory (no query when it says no); ``variant(slot, *, shop_id, stream_id,
  at) -> str | None`` is the stream's variant, recording its exposure in the caller's
  transaction, or None (not in an experiment: the standard). An app above streams asks with
  ``stream_variant``; a failing provider is logged and counts as the standard.
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


@dataclass(frozen=True)
class StreamExperience:
    varies: Callable[[str, int], bool]
    variant: Callable[..., str | None]


_stream_experiences: list[StreamExperience] = []


def stream_experience(*, varies: Callable[[str, int], bool], variant: Callable[..., str | None]) -> None:
    provider = StreamExperience(varies=varies, variant=variant)
    if provider not in _stream_experiences:
        _stream_experiences.append(provider)


def stream_variant(slot: str, *, shop_id: int, stream_id: int | Callable[[], int | None] | None, at) -> str | None:
    """The variant of ``slot`` a running experiment gives the stream as a whole, its exposure
    recorded (in the caller's transaction); None when none varies it for the shop's streams,
    or the stream is unknown: the standard experience. ``stream_id`` may be a function
    that finds the stream (it may query), called only when an experiment varies the slot."""
    for provider in _stream_experiences:
        try:
            if not provider.varies(slot, shop_id):
                continue
            stream = stream_id() if callable(stream_id) else stream_id
            if stream is None:
                return None
            return provider.variant(slot, shop_id=shop_id, stream_id=stream, at=at)
        except Exception:
            log.exception("stream experience of %s failed for shop %s", slot, shop_id)
            return None
    return None
