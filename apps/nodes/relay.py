"""The edge's outbox relay (docs/edge.md, "Relay").

``relay_run`` sends the outbox to the cloud, batch after batch, from the sequence the cloud
acknowledged last, until it is drained or a batch fails (then it backs off). One run at a
time per node (a PostgreSQL advisory lock; in-process on SQLite). No database transaction
is open across the HTTP call: stamping is its own short transaction, reading the batch is
plain autocommit reads, and the acknowledgement is one UPDATE afterwards. A run that dies
anywhere (a worker killed mid-batch) leaves the acknowledged sequence where it was, so the
next run sends the same events again and the cloud, which records each once, answers the
same acknowledgement.

``relay_kick`` is the spine's commit listener on an edge: it wakes a per-process thread
that enqueues the Celery task (with a broker) or runs the relay itself (embedded mode), so
neither a request nor the embedded scheduler ever waits for the cloud.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request

from celery import current_app
from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from creatorcommerce.process import PerProcess
from creatorcommerce.signing.services import jws_sign

from .locks import SingleRun
from .selectors import batch_events, edge_day_totals, edge_head, edge_totals, outbox_after
from .services import BATCH_TYP, RELAY_LOCK, outbox_stamp, relay_acked, relay_failed, relay_state

log = logging.getLogger(__name__)

SYNC_PATH = "/sync/v1/batches"


class SyncFailed(Exception):
    """A batch that did not get an acknowledgement (unreachable, timeout, non-200)."""


_relay_lock = SingleRun(RELAY_LOCK)


def batch_token(events: list) -> tuple[str, int, int]:
    """The signed batch (JWS compact, typ ``sync-batch+jws``) for ``events`` (stamped
    OutboxEvents in seq order): ``(token, from_seq, to_seq)``. ``totals`` carries, next to
    the currencies, the days of the batch's orders and the outbox head (docs/edge.md, "The
    batch")."""
    order_ids = [e.payload["order"] for e in events if e.type.startswith("order.") and "order" in e.payload]
    head = edge_head()
    head["seq"] = max(head["seq"], events[-1].seq)
    body = {
        "node": settings.NODE_ID,
        "from_seq": events[0].seq,
        "to_seq": events[-1].seq,
        "events": batch_events(events),
        "totals": {**edge_totals(), "days": edge_day_totals(order_ids), "head": head},
    }
    token, _kid = jws_sign(payload=body, typ=BATCH_TYP)
    return token, body["from_seq"], body["to_seq"]


def batch_post(token: str) -> dict:
    """POST one batch to the cloud; the answer's JSON on 200, SyncFailed otherwise."""
    request = urllib.request.Request(  # noqa: S310 - CLOUD_URL is the operator's http(s) URL
        settings.CLOUD_URL + SYNC_PATH,
        data=token.encode("ascii"),
        method="POST",
        headers={"Content-Type": "application/jose", "Accept": "application/json", "Connection": "close"},
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.SYNC_TIMEOUT_SECONDS) as response:  # noqa: S310
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        raise SyncFailed(f"HTTP {exc.code}: {detail}") from exc
    except (OSError, ValueError) as exc:  # refused, reset, timeout, not JSON
        raise SyncFailed(f"{type(exc).__name__}: {exc}") from exc
    acked = answer.get("acked_seq") if isinstance(answer, dict) else None
    if not isinstance(acked, int) or isinstance(acked, bool) or acked < 0:
        raise SyncFailed(f"no acked_seq in the answer: {answer!r}"[:300])
    return answer


_probed_at = 0.0  # this process's last probe (monotonic seconds)


def _link_is_back(state) -> bool:
    """While backing off after the link was down (the cloud refused or did not answer the
    connection; not an HTTP error, which the full backoff waits out), ask the cloud's
    ``/healthz`` at most every ``SYNC_PROBE_SECONDS``: once it answers, the link is back and
    the relay need not wait out the rest of the backoff (up to 30 s) before the backlog
    moves (docs/edge.md, "Relay")."""
    global _probed_at
    if settings.SYNC_PROBE_SECONDS <= 0 or state.last_error.startswith("HTTP ") or not state.last_error:
        return False
    now = time.monotonic()
    if now - _probed_at < settings.SYNC_PROBE_SECONDS:
        return False
    _probed_at = now
    probe = urllib.request.Request(settings.CLOUD_URL + "/healthz", headers={"Connection": "close"})  # noqa: S310
    try:
        with urllib.request.urlopen(probe, timeout=2.0) as response:  # noqa: S310 - the operator's URL
            response.read(4096)
    except urllib.error.HTTPError:
        pass  # it answered (a 503 from /healthz is one of the cloud's own checks): the link is up
    except (OSError, ValueError):
        return False
    log.info("the cloud accepts connections again: relaying before the backoff ends")
    return True


def relay_run(*, max_batches: int | None = None) -> dict:
    """Relay the outbox until it is drained, a batch fails, or ``max_batches`` were sent.

    Returns ``{"status", "batches", "events", "acked_seq"}``; ``status`` is ``idle``
    (drained), ``failed`` (backing off), ``backoff`` (still waiting from an earlier
    failure), ``busy`` (another run holds the lock), ``not_edge`` or ``limit``.
    """
    if settings.NODE_ROLE != "edge":
        return {"status": "not_edge", "batches": 0, "events": 0, "acked_seq": 0}
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("the relay must not run inside a transaction (it calls the network)")
    batches = sent = 0
    with _relay_lock() as got:
        if not got:
            return {"status": "busy", "batches": 0, "events": 0, "acked_seq": 0}
        state = relay_state()
        if state.next_attempt_at is not None and timezone.now() < state.next_attempt_at and not _link_is_back(state):
            return {"status": "backoff", "batches": 0, "events": 0, "acked_seq": state.acked_seq}
        size = max(1, settings.SYNC_BATCH_SIZE)
        while max_batches is None or batches < max_batches:
            outbox_stamp(limit=size * 10)
            events = outbox_after(seq=state.acked_seq, limit=size)
            if not events:
                return {"status": "idle", "batches": batches, "events": sent, "acked_seq": state.acked_seq}
            token, _first, _last = batch_token(events)
            while len(token) > settings.SYNC_MAX_BODY_BYTES and len(events) > 1:
                events = events[: len(events) // 2]
                token, _first, _last = batch_token(events)
            try:
                answer = batch_post(token)
            except SyncFailed as exc:
                delay = relay_failed(state=state, error=str(exc))
                log.warning("sync batch %s..%s failed (%s); next attempt in %.1f s", _first, _last, exc, delay)
                return {"status": "failed", "batches": batches, "events": sent, "acked_seq": state.acked_seq}
            acked = answer["acked_seq"]
            if acked > _last:
                # The cloud holds sequences this edge never sent (its outbox was reset): never
                # skip events on its word; the next batch meets seq_conflict (docs/edge.md).
                log.error("the cloud acknowledged %s, beyond the batch sent (..%s)", acked, _last)
                acked = _last
            relay_acked(state=state, acked_seq=acked, events=len(events))
            batches += 1
            sent += len(events)
        return {"status": "limit", "batches": batches, "events": sent, "acked_seq": state.acked_seq}


# -- kicks ----------------------------------------------------------------------------------


class _Kicker:
    """A daemon thread per process that turns kicks into relay runs, at most one at a time
    and at most every ``PAUSE`` seconds: many commits, one wake-up."""

    PAUSE = 0.2

    def __init__(self):
        self.wake = threading.Event()
        self.runs = 0  # for tests and diagnostics
        threading.Thread(target=self._run, name="sync-relay-kick", daemon=True).start()

    def kick(self) -> None:
        self.wake.set()

    def _run(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            try:
                if current_app.conf.task_always_eager:
                    close_old_connections()
                    try:
                        relay_run()
                    finally:
                        connections.close_all()  # this thread's: idle between kicks
                else:
                    from .tasks import relay_outbox

                    relay_outbox.delay()
                self.runs += 1
            except Exception:  # the thread must live on; beat runs the relay anyway
                log.exception("sync relay kick failed")
            time.sleep(self.PAUSE)


_kickers: PerProcess[_Kicker] = PerProcess(_Kicker)


def relay_kick(events=None) -> None:
    """Wake the relay (the spine calls this after each commit that recorded events). Costs
    a settings check and an Event.set on the committing thread; nothing else."""
    if settings.NODE_ROLE == "edge":
        _kickers.get().kick()
