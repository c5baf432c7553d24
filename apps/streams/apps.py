from django.apps import AppConfig


class StreamsConfig(AppConfig):
    name = "apps.streams"
    label = "streams"
    verbose_name = "Streams and drops"

    def ready(self):
        from . import pricing, units  # noqa: F401  (register the flash-deal offer provider and units source)
