"""The devices' Celery tasks (docs/devices.md, "Dispatch"). ``send_cue`` is routed to the
``cues`` queue (``CELERY_TASK_ROUTES``), which a plain worker consumes too."""

from __future__ import annotations

from celery import shared_task
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.signals import worker_init, worker_process_init, worker_process_shutdown, worker_ready
from django.conf import settings

from .dispatch import dispatch, retry_in
from .services import cues_sweep
from .transport import PublishFailed, close_driver, driver

CUES_QUEUE = "cues"
_publishes_cues = False  # this worker consumes the cues queue (set at its start)


@shared_task(name="apps.devices.tasks.send_cue", bind=True, ignore_result=True, max_retries=None)
def send_cue(self, cue_id: int) -> str:
    try:
        return dispatch(cue_id)
    except PublishFailed as exc:
        countdown = retry_in(cue_id, self.request.retries)
        if countdown is None:
            return "expired"
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(name="apps.devices.tasks.sweep_cues", ignore_result=True)
def sweep_cues() -> dict:
    """Every second (CELERY_BEAT_SCHEDULE): cues with no ack by their expiry fail."""
    return cues_sweep()


@worker_init.connect
def _note_cues_queue(sender=None, **kwargs) -> None:
    """Whether this worker consumes ``cues`` (``-Q``; all queues without it): only such a
    worker's processes keep an MQTT connection."""
    global _publishes_cues
    queues = sender.app.amqp.queues
    _publishes_cues = CUES_QUEUE in (queues.consume_from or queues)


def _connect_early() -> None:
    """Start the process's MQTT connection before its first cue, which otherwise waited
    for the connection (115-140 ms measured, docs/devices.md "Performance"). Non-blocking:
    paho connects in its own thread and reconnects with backoff."""
    if _publishes_cues and settings.MQTT_URL:
        driver()


@worker_process_init.connect
def _connect_in_child(**kwargs) -> None:
    _connect_early()  # a prefork pool's child: the processes that run the tasks


@worker_ready.connect
def _connect_in_worker(sender=None, **kwargs) -> None:
    # The solo and threads pools run their tasks in the worker's own process.
    pool = getattr(sender, "pool", None)  # sender: the worker's consumer
    if pool is not None and not isinstance(pool, PreforkPool):
        _connect_early()


@worker_process_shutdown.connect
def _close_mqtt_client(**kwargs) -> None:
    """A worker process that stops disconnects its MQTT client cleanly."""
    close_driver()
