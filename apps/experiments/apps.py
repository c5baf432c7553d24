from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "apps.experiments"
    label = "experiments"
    verbose_name = "Experiments on micro-interactions"

    def ready(self):
        # The spine imports events.py and handlers.py itself (creatorcommerce/spine/apps.py).
        # The snapshot's "experience" and the viewers' "experience" messages register into
        # the streams app (apps/streams/extras.py; docs/experiments.md, "Delivery").
        # The pin order's "personal" variant (apps/experiments/providers.py). The
        # stream-level slots' variants, for the devices' urgency cue (apps/experiments/rooms.py).
        from . import delivery, providers, rooms  # noqa: F401
