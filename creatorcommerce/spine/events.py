"""``emit()``: record a domain event in the caller's transaction; deliver it after commit."""

from __future__ import annotations

import atexit
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Iterable
from decimal import Decimal

from celery import current_app
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from creatorcommerce.logs import current_request_id
from creatorcommerce.process import PerProcess
from creatorcommerce.sql import insert, insert_select, set_keys

from .event_schema import check as check_schema
from .models import OutboxEvent
from .registry import handlers_for, queue_for

log = logging.getLogger(__name__)

EVENT_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
GROUP_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,99}$")


class EventError(ValueError):
    """An event that cannot be recorded: bad type, bad group name, payload not JSON."""


def emit(event_type: str, payload: dict, *, groups: Iterable[str] = (), using: str = "default") -> OutboxEvent:
    """Record ``event_type`` with ``payload`` in the outbox, inside the caller's transaction.

    Precondition: called inside ``transaction.atomic()`` together with the writes the event
    describes. After commit, and only then, the event is sent to each Channels group in
    ``groups`` and enqueued to every handler registered for its type; a rollback sends and
    enqueues nothing. The payload must serialize to JSON; if not, this raises at once. With
    ``SPINE_CHECK_EVENTS`` on (tests, DEBUG) it must also match the schema declared for
    ``event_type`` (``event_schema.py``), or this raises EventSchemaError.
    """
    return emit_many([(event_type, payload, groups)], using=using)[0]


def emit_many(events: Iterable[tuple[str, dict, Iterable[str]]], *, using: str = "default") -> list[OutboxEvent]:
    """``emit()`` for several events of one transaction, stored with one INSERT (the buy
    path emits two). Same preconditions and guarantees as ``emit()``, in the given order."""
    rows = [_outbox_row(event_type, payload, groups) for event_type, payload, groups in events]
    if not transaction.get_connection(using).in_atomic_block:
        raise EventError("emit() must be called inside transaction.atomic(), with the writes it describes")
    insert(rows, using=using)
    return _deliver_after_commit(rows, using)


def _deliver_after_commit(rows: list[OutboxEvent], using: str) -> list[OutboxEvent]:
    transaction.on_commit(lambda: deliver(rows), using=using, robust=True)
    return rows


def emit_many_when(
    statement: str,
    params: list,
    events: Iterable[tuple[str, dict, Iterable[str]]],
    *,
    using: str = "default",
) -> list[OutboxEvent] | None:
    """Run ``statement`` (an UPDATE, INSERT or DELETE with a RETURNING clause) and record
    ``events`` only if it returned a row; return them, or None when it matched nothing
    (then nothing is recorded). The statement and the outbox INSERT are one unit:

    - on PostgreSQL, one statement (a data-modifying CTE), so the pair costs one round
      trip, and outside ``transaction.atomic()`` no BEGIN or COMMIT either (the buy
      path's confirm: four round trips down to one);
    - elsewhere, the statement and then ``emit_many()`` in one ``transaction.atomic()``.

    Delivery is as ``emit_many()``'s: after commit (of the caller's transaction if one is
    open), never after a rollback. Events are checked, and may raise EventError, before
    anything is run.
    """
    rows = [_outbox_row(event_type, payload, groups) for event_type, payload, groups in events]
    connection = transaction.get_connection(using)
    if connection.vendor != "postgresql" or not rows:
        with transaction.atomic(using=using):
            with connection.cursor() as cursor:
                cursor.execute(statement, params)
                matched = bool(cursor.fetchall())
            if not matched:
                return None
            insert(rows, using=using)
            return _deliver_after_commit(rows, using)
    sql, params = when_statement(statement, params, rows, using=using)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        keys = [row[0] for row in cursor.fetchall()]
    if not keys:
        return None
    return _deliver_after_commit(set_keys(rows, keys, using=using), using)


def when_statement(
    statement: str, params: list, rows: list[OutboxEvent], *, using: str = "default"
) -> tuple[str, list]:
    """``emit_many_when``'s one statement on PostgreSQL (SQL and parameters): ``statement``
    as a data-modifying CTE, then the outbox INSERT (``creatorcommerce.sql.insert_select``,
    built from the model's meta), which inserts ``rows`` once if the statement returned any
    row at all, and returns their ids."""
    sql, outbox_params = insert_select(rows, source="(SELECT 1 FROM matched LIMIT 1) AS m", using=using)
    return f"WITH matched AS ({statement}) {sql}", [*params, *outbox_params]


class _PayloadEncoder(DjangoJSONEncoder):
    """Django's encoder, with decimals always in plain notation: ``Decimal("1E+1")`` (a price
    typed as ``1e1``) is ``"10"``, never ``"1E+1"`` (docs/events.md: a decimal is a string of
    digits)."""

    def default(self, o):
        if isinstance(o, Decimal):
            return format(o, "f")
        return super().default(o)


def _outbox_row(event_type: str, payload: dict, groups: Iterable[str]) -> OutboxEvent:
    if not EVENT_TYPE_RE.match(event_type):
        raise EventError(f"event type {event_type!r} is not of the form '<noun>.<past_verb>'")
    groups = list(dict.fromkeys(groups))
    for group in groups:
        if not GROUP_RE.match(group):
            raise EventError(f"group name {group!r} may hold only letters, digits, '-', '_' and '.'")
    try:
        # Round-trip through JSON now, so that what the outbox stores, what sync replicates
        # and what consumers receive are the same plain values (Decimal -> str, etc.).
        plain = json.loads(json.dumps(payload, cls=_PayloadEncoder))
    except (TypeError, ValueError) as exc:
        raise EventError(f"payload of {event_type} is not JSON-serializable: {exc}") from exc
    if not isinstance(plain, dict):
        raise EventError("an event payload is a JSON object")
    if settings.SPINE_CHECK_EVENTS:  # the declared shape (event_schema.py, docs/events.md)
        check_schema(event_type, plain)
    return OutboxEvent(
        type=event_type, payload=plain, groups=groups, node=settings.NODE_ID, request_id=current_request_id()
    )


_commit_listeners: list = []


def on_outbox_commit(listener) -> None:
    """Call ``listener(events)`` on the committing thread after each commit that recorded
    events (the edge's sync relay is kicked so, docs/edge.md). A listener must be cheap and
    must not block: it runs on the request's thread, after the commit, before the answer."""
    if listener not in _commit_listeners:
        _commit_listeners.append(listener)


def deliver(events: list[OutboxEvent]) -> None:
    """Fan the events one transaction committed out to their groups and hand them to their
    handlers, in order.

    Neither keeps the request waiting: fan-out is scheduled on an event loop, and with a
    broker the enqueueing (a network round trip per message) runs on a background thread;
    if it fails, redeliver_pending finds the event in the outbox. Without a broker,
    handlers run right here, eagerly, as the embedded mode promises. A transaction's events
    cross to the loop and to the enqueueing thread once, together: each crossing wakes a
    thread, and on the buy path that cost more than the sends.
    """
    from .fanout import fan_out
    from .processes import heard_here

    heard_here(events)  # this process's memory first: the next request may ask it
    fan_out(events)
    for listener in _commit_listeners:
        try:
            listener(events)
        except Exception:  # a listener must never fail the commit's delivery
            log.exception("commit listener %r failed", listener)
    pairs = [(event.pk, name) for event in events for name in handlers_for(event.type)]
    if not pairs:
        return
    if current_app.conf.task_always_eager:
        wanted = {event_id for event_id, _ in pairs}
        for event in events:
            if event.pk in wanted:
                enqueue_handlers(event)
    else:
        _enqueuer().submit(pairs)


MAX_BATCH = 200  # handler runs per broker message, at most


class _Enqueuer:
    """One daemon thread per process that hands committed events' handler work to the
    broker, off the request's thread.

    Whatever queued up while it was publishing goes out as one message (``run_handlers``):
    ``Task.delay`` costs ~0.3 ms of CPU, almost all of it per message, and under load
    commits arrive faster than one thread publishes them one by one. After the first
    commit it lingers ``SPINE_ENQUEUE_LINGER_SECONDS`` (5 ms) for more, as Kafka's
    producers do: at 200 commits a second one more arrives in 5 ms on average, so fewer
    messages (py-spy put the publishing at 9 % of a daphne process's GIL time at 200 buys
    a second; the linger measured about -0.1 ms of CPU per buy, docs/performance.md), and
    handlers (the payment capture, badges, device cues) start at most that much later.
    ``flush()`` ends a linger at once; 0 publishes each commit as soon as the thread is free.
    """

    def __init__(self):
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.messages = 0  # for tests and diagnostics
        threading.Thread(target=self._run, name="spine-enqueue", daemon=True).start()

    def submit(self, pairs: list[tuple[int, str]]) -> None:
        """Hand (event id, handler) pairs to the broker: chosen on the committing thread,
        so a handler's ``wants`` never runs (nor queries) on this one."""
        self.queue.put(pairs)

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted so far was handed to the broker."""
        done = threading.Event()
        self.queue.put(done)
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            pairs: list[tuple[int, str]] = []
            flushed: list[threading.Event] = []
            item = self.queue.get()
            linger = max(0.0, settings.SPINE_ENQUEUE_LINGER_SECONDS)
            deadline = time.monotonic() + linger
            while True:
                if isinstance(item, threading.Event):
                    flushed.append(item)
                else:
                    pairs.extend(item)
                if len(pairs) >= MAX_BATCH:
                    break
                try:
                    if flushed or linger == 0:
                        item = self.queue.get_nowait()
                    else:
                        item = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            try:
                if pairs:
                    enqueue_batch(pairs)
                    self.messages += 1
            except Exception:  # the thread must live on; redeliver_pending finds these events
                log.exception("enqueueing %d handler runs failed", len(pairs))
            finally:
                for done in flushed:
                    done.set()


_enqueuers: PerProcess[_Enqueuer] = PerProcess(_Enqueuer)


def _enqueuer() -> _Enqueuer:
    """The process's enqueueing thread."""
    return _enqueuers.get()


@atexit.register
def _flush_at_exit() -> None:
    """A command that commits and exits at once still hands its events to the broker (the
    thread is a daemon; without this they would wait for redeliver_pending)."""
    enqueuer = _enqueuers.current()
    if enqueuer is not None:
        enqueuer.flush(timeout=5)


def enqueue_batch(pairs: list[tuple[int, str]]) -> None:
    """One broker message for every (event id, handler) pair, per queue (a handler that
    names its own queue, ``registry.handler(queue=...)``, gets messages of its own)."""
    from .tasks import run_handler, run_handlers

    by_queue: dict[str | None, list[tuple[int, str]]] = {}
    for pair in pairs:
        by_queue.setdefault(queue_for(pair[1]), []).append(pair)
    for queue_name, some in by_queue.items():
        options = {"queue": queue_name} if queue_name else {}
        try:
            if len(some) == 1:
                run_handler.apply_async(some[0], **options)
            else:
                run_handlers.apply_async((some,), **options)
        except Exception:  # broker down: redeliver_pending picks them up from the outbox
            log.exception("could not enqueue %d handler runs", len(some))


def enqueue_handlers(event: OutboxEvent) -> None:
    from .tasks import run_handler

    for name in handlers_for(event.type):
        queue_name = queue_for(name)
        try:
            run_handler.apply_async((event.pk, name), **({"queue": queue_name} if queue_name else {}))
        except Exception:  # broker down: redeliver_pending picks it up from the outbox
            log.exception("could not enqueue %s for event %s", name, event.uuid)


def events_redact(*, types: Iterable[str], match: dict, redact: dict) -> int:
    """Overwrite fields of recorded events: every event of ``types`` whose payload has the
    values of ``match`` gets the values of ``redact`` (e.g. a viewer's presence events lose
    who they were when the viewer revokes location consent: docs/geofences.md, "Consent").
    The only change the outbox ever takes after an event is recorded, for erasing personal
    data; events keep their ids, order and the rest of their payload. Returns how many were
    changed. Precondition: inside ``transaction.atomic()`` with the erasure it belongs to."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("events_redact must run inside the transaction of the erasure")
    lookups = {f"payload__{key}": value for key, value in match.items()}
    rows = list(OutboxEvent.objects.filter(type__in=list(types), **lookups).only("id", "payload"))
    for row in rows:
        row.payload = {**row.payload, **redact}
    OutboxEvent.objects.bulk_update(rows, ["payload"], batch_size=500)
    return len(rows)
