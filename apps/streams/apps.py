from django.apps import AppConfig


class StreamsConfig(AppConfig):
    name = "apps.streams"
    label = "streams"
    verbose_name = "Streams and drops"

    def ready(self):
        # The flash-deal offer provider and units source; viewers per live stream for /metrics.
        from . import metrics, pricing, units  # noqa: F401
