"""The Celery app. Configuration comes from Django settings (``CELERY_*``); tasks are found
in every installed app's ``tasks.py``; periodic tasks are declared in settings
(``CELERY_BEAT_SCHEDULE``)."""

import os

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorcommerce.settings")

app = Celery("creatorcommerce")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _connections_back(sender=None, **kwargs) -> None:
    """Around each task run by a worker, what Django does around each request: a connection
    that is broken or past ``CONN_MAX_AGE`` is closed (with the pool: handed back to it), so
    a database restart costs one failed task, not every later one. Celery's own fixup
    closed the process's whole pool instead (``CELERY_DB_REUSE_MAX`` in settings). An
    eager task runs inside its caller's request and transaction: never there."""
    if sender is None or getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


def _fresh_pools(**kwargs) -> None:
    """When a worker's pool starts, Celery's Django fixup closes the sockets under the
    connections it finds (meant for a forked child's inherited ones) and hands them back to
    the connection pool, which cannot tell: in a prefork child it then closes that pool, but
    a solo pool starts in the worker's own process and keeps it, so a later task could be
    handed a connection whose socket is gone (or reused). Start every pool afresh."""
    from django.db import connections

    for alias in connections:
        wrapper = connections[alias]
        if alias in getattr(wrapper, "_connection_pools", {}):
            wrapper.close_pool()


@worker_init.connect
def _after_the_fixup(**kwargs) -> None:
    # Connected here, after the fixup connected its own worker_process_init receiver (on
    # worker_init, which it connected first): receivers run in the order they connected.
    worker_process_init.connect(_fresh_pools, weak=False)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _json_lines(logger, **kwargs):
    """With ``LOG_FORMAT=json`` a worker writes the same JSON lines as the web processes,
    each with the request id of the event its handler serves (docs/operations.md, "Logs");
    Celery's own format otherwise."""
    from django.conf import settings

    from .logs import JsonFormatter, RequestIdFilter

    if settings.LOG_FORMAT != "json":
        return
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())
        handler.addFilter(RequestIdFilter())
