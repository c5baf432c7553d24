"""The devices' Celery tasks (docs/devices.md, "Dispatch"). ``send_cue`` is routed to the
``cues`` queue (``CELERY_TASK_ROUTES``), which a plain worker consumes too."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from .dispatch import dispatch
from .models import Cue
from .services import cue_expire, cues_sweep
from .transport import PublishFailed


@shared_task(name="apps.devices.tasks.send_cue", bind=True, ignore_result=True, max_retries=None)
def send_cue(self, cue_id: int) -> str:
    try:
        return dispatch(cue_id)
    except PublishFailed as exc:
        expires_at = Cue.objects.filter(pk=cue_id).values_list("expires_at", flat=True).first()
        remaining = (expires_at - timezone.now()).total_seconds() if expires_at else 0
        if remaining <= 0:
            cue_expire(cue_id=cue_id)  # only if it never left: a sent one is the sweep's
            return "expired"
        countdown = min(0.25 * 2**self.request.retries, 5.0, remaining)
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(name="apps.devices.tasks.sweep_cues", ignore_result=True)
def sweep_cues() -> dict:
    """Every second (CELERY_BEAT_SCHEDULE): cues with no ack by their expiry fail."""
    return cues_sweep()
