"""The embedded scheduler: Celery beat's schedule, run inside the web process.

Without a broker (the embedded default) there is no beat and no worker, but drops must
still open and close on time. This ASGI wrapper starts, on the server's own event loop,
a task that runs each entry of ``CELERY_BEAT_SCHEDULE`` at its interval, in a worker thread,
eagerly. Events those tasks emit then reach this process's in-memory channel layer, which
is the only one there is in embedded mode. With a broker, ``celery beat`` does this job and
the embedded scheduler stays off (``EMBEDDED_SCHEDULER``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

log = logging.getLogger(__name__)


def _interval(schedule) -> float | None:
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    if isinstance(schedule, (int, float)):
        return float(schedule)
    run_every = getattr(schedule, "run_every", None)  # celery.schedules.schedule
    return run_every.total_seconds() if isinstance(run_every, timedelta) else None


def _run_task(name: str) -> None:
    from creatorcommerce.celery import app

    close_old_connections()
    try:
        app.tasks[name].apply()
    finally:
        close_old_connections()


async def run_schedule(beat_schedule: dict, *, tick: float = 0.25) -> None:
    from creatorcommerce.celery import app

    # A worker imports every app's tasks.py when it starts; the web process never does.
    await sync_to_async(app.autodiscover_tasks, thread_sensitive=False)(force=True)
    loop = asyncio.get_running_loop()
    entries = [(entry["task"], _interval(entry["schedule"])) for entry in beat_schedule.values()]
    entries = [(task, every) for task, every in entries if every]
    due = {task: loop.time() for task, _ in entries}
    while True:
        for task, every in entries:
            if loop.time() >= due[task]:
                due[task] = loop.time() + every
                try:
                    await sync_to_async(_run_task, thread_sensitive=False)(task)
                except Exception:
                    log.exception("embedded scheduler: %s failed", task)
        await asyncio.sleep(tick)


class EmbeddedScheduler:
    def __init__(self, application):
        self.application = application
        self.task = None

    async def __call__(self, scope, receive, send):
        if self.task is None and settings.EMBEDDED_SCHEDULER:
            self.task = asyncio.get_running_loop().create_task(run_schedule(settings.CELERY_BEAT_SCHEDULE))
        return await self.application(scope, receive, send)
