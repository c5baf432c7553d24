"""The Celery app. Configuration comes from Django settings (``CELERY_*``); tasks are found
in every installed app's ``tasks.py``; periodic tasks are declared in settings
(``CELERY_BEAT_SCHEDULE``)."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorcommerce.settings")

app = Celery("creatorcommerce")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
