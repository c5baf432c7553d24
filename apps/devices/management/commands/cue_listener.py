"""``manage.py cue_listener``: record device acks and status, fail cues with no ack by their
expiry (docs/devices.md, "Acks and status"). Run exactly as many as you like: recording is
idempotent."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.devices.listener import AckListener
from creatorcommerce.mqtt import shown_url


class Command(BaseCommand):
    help = "Listen for device acks and status over MQTT and time out unacknowledged cues."

    def add_arguments(self, parser):
        parser.add_argument("--sweep-every", type=float, default=1.0, help="seconds between timeout sweeps")

    def handle(self, *args, sweep_every, **options):
        if not settings.MQTT_URL:
            raise CommandError("MQTT_URL is not set: without a broker, cues go to the log driver (docs/devices.md).")
        listener = AckListener(settings.MQTT_URL, sweep_every=sweep_every)
        self.stdout.write(f"cue listener on {shown_url(settings.MQTT_URL)} for node {settings.NODE_ID}")
        try:
            listener.run()
        except KeyboardInterrupt:
            listener.stop()
