"""Sending cues to an MQTT broker without a Celery broker (docs/devices.md, "Dispatch").

Eager tasks run where they are called: a cue's publish, which waits for the broker's
PUBACK and retries while the broker is away, would hold the buy or the control-room
request that made it. So with ``MQTT_URL`` and no Celery broker a cue goes to this one
thread per process instead, which sends it as ``send_cue`` would, with the same backoff
and expiry (``dispatch.retry_in``). The log driver has no network to wait on: without
``MQTT_URL`` a cue is sent at once, where it was made.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time

from django.db import OperationalError, close_old_connections

from creatorcommerce.process import PerProcess

from .dispatch import dispatch, retry_in
from .transport import PublishFailed

log = logging.getLogger(__name__)

DB_RETRIES = 10  # a busy database: tries again after 20 ms, doubling, at most 1 s apart


class CueSender:
    def __init__(self):
        self.due: list[tuple[float, int, int, int]] = []  # (when, order, cue id, attempt)
        self.order = itertools.count()
        self.wake = threading.Condition()
        self.sent = 0  # cues handled, for tests and diagnostics
        threading.Thread(target=self._run, name="cue-sender", daemon=True).start()

    def submit(self, cue_id: int, *, attempt: int = 0, delay: float = 0.0) -> None:
        with self.wake:
            heapq.heappush(self.due, (time.monotonic() + delay, next(self.order), cue_id, attempt))
            self.wake.notify()

    def _next(self) -> tuple[int, int]:
        with self.wake:
            while True:
                if self.due:
                    wait = self.due[0][0] - time.monotonic()
                    if wait <= 0:
                        _, _, cue_id, attempt = heapq.heappop(self.due)
                        return cue_id, attempt
                    self.wake.wait(wait)
                else:
                    self.wake.wait()

    def _run(self) -> None:
        while True:
            cue_id, attempt = self._next()
            close_old_connections()
            try:
                dispatch(cue_id)
            except PublishFailed:
                try:
                    delay = retry_in(cue_id, attempt)
                except Exception:
                    log.exception("cue %s: could not schedule a retry", cue_id)
                    delay = None
                if delay is not None:
                    self.submit(cue_id, attempt=attempt + 1, delay=delay)
            except OperationalError as exc:
                # The database was busy (SQLite's lock, a PostgreSQL failover): try again
                # shortly, a bounded number of times; the sweep finds what is left.
                if attempt < DB_RETRIES:
                    self.submit(cue_id, attempt=attempt + 1, delay=min(0.02 * 2**attempt, 1.0))
                else:
                    log.warning("sending cue %s failed: %s", cue_id, exc)
            except Exception:  # the thread lives on; the sweep fails what is left
                log.exception("sending cue %s failed", cue_id)
            finally:
                self.sent += 1
                close_old_connections()


_senders: PerProcess[CueSender] = PerProcess(CueSender)


def cue_sender() -> CueSender:
    return _senders.get()
