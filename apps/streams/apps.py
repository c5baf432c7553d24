from django.apps import AppConfig


class StreamsConfig(AppConfig):
    name = "apps.streams"
    label = "streams"
    verbose_name = "Streams and drops"

    def ready(self):
        from . import pricing  # noqa: F401  (registers the flash-deal offer provider)
