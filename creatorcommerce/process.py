"""Values made once per process: pools, background threads, event loops.

A forked child inherits its parent's objects but not their threads, so each of these is
keyed by the process id and made again in a child on first use.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    def __init__(self, factory: Callable[[], T], *, stale: Callable[[T], bool] = lambda value: False):
        self._factory, self._stale = factory, stale
        self._values: dict[int, T] = {}
        self._lock = threading.Lock()

    def get(self) -> T:
        """This process's value, made now if it was not yet (or is ``stale``)."""
        pid = os.getpid()
        with self._lock:
            value = self._values.get(pid)
            if value is None or self._stale(value):
                value = self._values[pid] = self._factory()
            return value

    def current(self) -> T | None:
        """This process's value if it was made, without making it."""
        return self._values.get(os.getpid())
