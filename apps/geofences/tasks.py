"""The geofences' periodic task (docs/geofences.md, "Dwell and the beat")."""

from celery import shared_task

from .services import presence_beat


@shared_task(name="apps.geofences.tasks.fire_dwell", ignore_result=True)
def fire_dwell(now=None) -> dict:
    """Every 30 s (CELERY_BEAT_SCHEDULE): dwell for viewers inside who stopped pinging, and
    exit for those silent past GEO_PRESENCE_SILENT_SECONDS."""
    return presence_beat(now=now)
