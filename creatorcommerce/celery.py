"""The Celery app. Configuration comes from Django settings (``CELERY_*``); tasks are found
in every installed app's ``tasks.py``; periodic tasks are declared in settings
(``CELERY_BEAT_SCHEDULE``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorcommerce.settings")

app = Celery("creatorcommerce")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
