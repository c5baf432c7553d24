"""The devices' Celery tasks (docs/devices.md, "Dispatch"). ``send_cue`` is routed to the
``cues`` queue (``CELERY_TASK_ROUTES``), which a plain worker consumes too."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_process_shutdown

from .dispatch import dispatch, retry_in
from .services import cues_sweep
from .transport import PublishFailed, close_driver


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


@worker_process_shutdown.connect
def _close_mqtt_client(**kwargs) -> None:
    """A worker process that stops disconnects its MQTT client cleanly."""
    close_driver()
