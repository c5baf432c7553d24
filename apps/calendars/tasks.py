"""The calendars' periodic task (docs/calendars.md, "Sending")."""

from celery import shared_task

from .services import reminders_dispatch


@shared_task(name="apps.calendars.tasks.dispatch_reminders", ignore_result=True)
def dispatch_reminders(now=None) -> dict:
    """Every 15 s (CELERY_BEAT_SCHEDULE): send the reminders that are due, once per viewer,
    drop and channel, however many of these run at once."""
    return reminders_dispatch(now=now)
