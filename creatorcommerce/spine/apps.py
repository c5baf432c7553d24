from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class SpineConfig(AppConfig):
    name = "creatorcommerce.spine"
    label = "spine"
    verbose_name = "Event spine"

    def ready(self):
        # Each app declares its events' payloads in `<app>/events.py` (event_schema.py) and
        # its event handlers in `<app>/handlers.py`.
        autodiscover_modules("events", "handlers")
        from . import metrics  # noqa: F401  (the outbox backlog, read at scrape time)
