"""Celery tasks of the spine: run one handler for one event, exactly once in effect."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from creatorcommerce.logs import bound_request_id

from .models import HandlerRun, OutboxEvent
from .registry import get_handler, is_atomic, queue_for, redeliver_within, subscribed_types

log = logging.getLogger(__name__)


def apply_handler(event_id: int, handler_name: str) -> str:
    """Apply one handler to one event unless it was applied before.

    The HandlerRun row and the handler's own writes commit together: if the handler raises,
    neither stays, and a retry starts clean. A concurrent duplicate blocks on the unique
    (event, handler) index and then finds the pair taken.
    """
    fn = get_handler(handler_name)
    if fn is None:
        log.error("no handler registered as %s", handler_name)
        return "unknown-handler"
    event = OutboxEvent.objects.filter(pk=event_id).first()
    if event is None:
        return "missing-event"
    # The request that recorded the event is named in what the handler logs and in the
    # events it records in turn (creatorcommerce/logs.py).
    with bound_request_id(event.request_id):
        try:
            outcome = _apply(fn, event, handler_name)
        except Exception as exc:
            log.warning("handler %s on %s %s raised %r", handler_name, event.type, event.pk, exc, extra=_fields(event))
            raise
        log.info("handler %s on %s %s: %s", handler_name, event.type, event.pk, outcome, extra=_fields(event))
    return outcome


def _fields(event: OutboxEvent) -> dict:
    return {"event": str(event.uuid), "event_type": event.type}


def _apply(fn, event: OutboxEvent, handler_name: str) -> str:
    if not is_atomic(handler_name):
        if HandlerRun.objects.filter(event=event, handler=handler_name).exists():
            return "duplicate"
        fn(event)  # outside any transaction; the handler is idempotent by contract
        try:
            with transaction.atomic():
                HandlerRun.objects.create(event=event, handler=handler_name)
        except IntegrityError:
            return "duplicate"
        return "applied"
    with transaction.atomic():
        try:
            with transaction.atomic():
                HandlerRun.objects.create(event=event, handler=handler_name)
        except IntegrityError:
            return "duplicate"
        fn(event)
    return "applied"


def _queue(handler_name: str) -> dict:
    """The handler's own queue as ``apply_async`` options (``registry.handler(queue=...)``)."""
    queue_name = queue_for(handler_name)
    return {"queue": queue_name} if queue_name else {}


@shared_task(
    name="creatorcommerce.spine.tasks.run_handler",
    autoretry_for=(OperationalError, ConnectionError),
    retry_backoff=True,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=10,
)
def run_handler(event_id: int, handler_name: str) -> str:
    return apply_handler(event_id, handler_name)


@shared_task(name="creatorcommerce.spine.tasks.run_handlers")
def run_handlers(pairs: list) -> dict:
    """``run_handler`` for several (event, handler) pairs, one broker message for all (the
    web process's enqueuer sends what queued up together). A pair that fails on the
    database or the network is sent on as its own ``run_handler``, with that task's
    retries; one whose handler raises anything else is logged and left to
    ``redeliver_pending``, as a failed ``run_handler`` would be. The others still run."""
    outcomes: dict[str, int] = {}
    for event_id, handler_name in pairs:
        try:
            outcome = apply_handler(event_id, handler_name)
        except (OperationalError, ConnectionError):
            log.warning("handler %s for event %s failed; retrying on its own", handler_name, event_id, exc_info=True)
            run_handler.apply_async((event_id, handler_name), countdown=1, **_queue(handler_name))
            outcome = "retrying"
        except Exception:
            log.exception("handler %s failed for event %s", handler_name, event_id)
            outcome = "failed"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


@shared_task(name="creatorcommerce.spine.tasks.redeliver_pending")
def redeliver_pending(min_age_seconds: int = 30, max_age_hours: int = 24, limit: int = 500) -> int:
    """Enqueue handlers that never ran for recent events (a broker that was down, a worker
    that died). Duplicates are harmless: apply_handler dedupes. Only to handlers that want
    the type now, and no older than a handler's ``redeliver_within``."""
    now = timezone.now()
    oldest, newest = now - timedelta(hours=max_age_hours), now - timedelta(seconds=min_age_seconds)
    sent = 0
    for event_type, names in subscribed_types().items():
        for name in names:
            within = redeliver_within(name)
            since = max(oldest, now - within) if within is not None else oldest
            pending = (
                OutboxEvent.objects.filter(type=event_type, created_at__range=(since, newest))
                .exclude(runs__handler=name)
                .values_list("pk", flat=True)[:limit]
            )
            for event_id in pending:
                run_handler.apply_async((event_id, name), **_queue(name))
                sent += 1
    return sent
