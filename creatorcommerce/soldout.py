"""What this process knows to be at zero: units counters kept current from spine events.

A buy takes its units out of a counter, a stock row or an offer's own units (a flash
deal's), with a conditional UPDATE that is the only arbiter of the last units. During a
stampede most taps lose, and each loser used to cost the database a read and a refused
UPDATE. This module remembers, per process, each counter's last known count: the apps that
own counters declare which events carry them (``units_counter`` in their ``handlers.py``:
``stock.changed`` for stock rows, ``deal.*`` for deals), and every web process hears those
events (creatorcommerce/spine/processes.py). The orders app asks ``at_zero`` before it lets a
buy reach the database (apps/orders/soldout.py, docs/buying.md "Sold out from memory").

Counts are versioned (every change of a counter raises its version), so news older than
what is held is dropped, whatever order it arrives in. A buy the database refused for want
of one unit also says its counter is at zero (``observed_zero``), which renews what is known
without an event: then only if no event about that counter arrived while the buy ran.

Knowledge expires: a count older than ``SOLDOUT_MEMORY_SECONDS`` (no event, no refused buy
since) is not trusted, so a "sold out" whose restock event was lost on the way answers from
the database again after at most that long. Memory can be wrong only in the safe direction
while it is current: a stale "available" lets a buy reach the database, which refuses it; a
stale "sold out" lasts until the restock's event arrives (milliseconds) or the expiry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from creatorcommerce.process import PerProcess
from creatorcommerce.spine.processes import hear

# Counts heard of more than this long ago are dropped when the table grows past PRUNE_AT
# (versions only need to outlive the reordering of messages in flight: milliseconds).
PRUNE_AFTER_SECONDS = 600.0
PRUNE_AT = 50_000


@dataclass(slots=True)
class Count:
    available: int | None  # None: not a source of units now (a closed deal)
    version: int
    at: float  # time.monotonic() of the last news
    seq: int  # Memory.seq when an event last set it
    until: float | None  # wall-clock time (epoch) after which it sells nothing (a deal's end)


class Memory:
    """Per process: (source, id) -> Count. Written under a lock from request threads and the
    event loop; read without one (a dict read is atomic)."""

    def __init__(self):
        self.counts: dict[tuple[str, int], Count] = {}
        self.seq = 0  # events applied, ever: ``mark()``
        self.lock = threading.Lock()
        # For tests and diagnostics (and the lead's metrics).
        self.heard = 0
        self.observed = 0

    def mark(self) -> int:
        """Note this before a buy reaches the database; give it to ``observed_zero``."""
        return self.seq

    def heard_count(self, source: str, id: int, *, available: int | None, version: int, until: float | None) -> None:
        """An event's absolute count of a counter (at ``version``)."""
        now = time.monotonic()
        with self.lock:
            self.seq += 1
            self.heard += 1
            held = self.counts.get((source, id))
            if held is not None and version < held.version:
                return  # older than what is held
            self.counts[(source, id)] = Count(available, version, now, self.seq, until)
            if len(self.counts) > PRUNE_AT:
                self._prune(now)

    def observed_zero(self, source: str, id: int, *, since: int) -> None:
        """The database just refused one unit of this counter: it is at zero, unless an event
        about it arrived since ``since`` (``mark()``), which may be newer than the refusal."""
        now = time.monotonic()
        with self.lock:
            held = self.counts.get((source, id))
            if held is not None and held.seq > since:
                return
            self.observed += 1
            version = held.version if held is not None else -1
            until = held.until if held is not None else None
            self.counts[(source, id)] = Count(0, version, now, held.seq if held is not None else 0, until)

    def at_zero(self, source: str, id: int, *, until: float | None = None) -> bool:
        """Whether this counter is known, now, to hold no unit: heard of within
        ``SOLDOUT_MEMORY_SECONDS`` at 0, and (a deal) not past its end (``until``: the end
        the caller knows, the earlier of the two counts)."""
        count = self.counts.get((source, id))
        if count is None or count.available != 0:
            return False
        if time.monotonic() - count.at >= settings.SOLDOUT_MEMORY_SECONDS:
            return False
        ends = min((t for t in (until, count.until) if t is not None), default=None)
        return ends is None or time.time() < ends

    def forget(self) -> None:
        with self.lock:
            self.counts.clear()

    def _prune(self, now: float) -> None:
        old = [key for key, count in self.counts.items() if now - count.at > PRUNE_AFTER_SECONDS]
        for key in old:
            del self.counts[key]


_memory: PerProcess[Memory] = PerProcess(Memory)


def memory() -> Memory:
    """This process's memory (a forked child starts with an empty one)."""
    return _memory.get()


def units_counter(
    event_type: str, *, source: str, read: Callable[[dict], tuple[int, int | None, int, float | None]]
) -> None:
    """Declare that ``event_type`` carries a units counter's absolute count: ``read(payload)``
    gives ``(id, available or None, version, until or None)`` for the counter ``(source,
    id)`` (``source`` as the buy's claims name it: ``stock``, ``deal``)."""

    def heard_count(payload: dict) -> None:
        id, available, version, until = read(payload)
        memory().heard_count(source, id, available=available, version=version, until=until)

    heard_count.__qualname__ = f"units_counter({event_type!r}, source={source!r})"
    hear(event_type, heard_count)
