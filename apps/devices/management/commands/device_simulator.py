"""``manage.py device_simulator``: play devices without hardware (docs/devices.md,
"Device simulator")."""

import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.devices.models import Device
from apps.devices.simulator import SimulatedDevice, load_credentials
from creatorcommerce.mqtt import parse_mqtt_url


class Command(BaseCommand):
    help = "Play the devices of a room (or all devices): show each cue, ack it after --delay."

    def add_arguments(self, parser):
        parser.add_argument("--room", type=int, help="room id (default: every device of the node)")
        parser.add_argument(
            "--broker",
            metavar="URL",
            help="where devices connect (default: MQTT_URL's host and port; with the shipped Mosquitto "
            "config, its devices' listener, e.g. mqtt://broker-host:1883)",
        )
        parser.add_argument("--device", action="append", default=[], help="only this MQTT device id (repeatable)")
        parser.add_argument("--delay", type=float, default=0.0, help="seconds before each ack")
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--fail", action="store_true", help='ack every cue "failed"')
        group.add_argument("--silent", action="store_true", help="never ack")
        account = parser.add_mutually_exclusive_group()
        account.add_argument(
            "--credentials",
            metavar="FILE",
            help="JSON {mqtt_id: password}: each device connects as itself, as a broker with the "
            "ACL requires (mqtt_auth --reset-credentials writes it)",
        )
        account.add_argument("--username", help="one MQTT username for every device (default: MQTT_URL's)")
        parser.add_argument("--password", help="its MQTT password")

    def handle(self, *args, room, broker, device, delay, fail, silent, credentials, username, password, **options):
        if not settings.MQTT_URL:
            raise CommandError(
                "MQTT_URL is not set: without a broker the simulated devices run inside the app (docs/devices.md)."
            )
        devices = Device.objects.filter(is_active=True).order_by("pk")
        if room is not None:
            devices = devices.filter(room_id=room)
        if device:
            devices = devices.filter(mqtt_id__in=device)
        devices = list(devices)
        if not devices:
            raise CommandError("No devices to play.")
        accounts = {d.mqtt_id: (username, password) for d in devices}
        if credentials:
            try:
                passwords = load_credentials(credentials)
            except ValueError as error:
                raise CommandError(str(error)) from None
            missing = [d.mqtt_id for d in devices if d.mqtt_id not in passwords]
            if missing:
                raise CommandError(f"{credentials} has no password for {', '.join(missing)}.")
            accounts = {d.mqtt_id: (d.mqtt_id, passwords[d.mqtt_id]) for d in devices}
        url = broker or settings.MQTT_URL
        try:
            parse_mqtt_url(url)
        except ValueError as error:
            raise CommandError(str(error)) from None
        sims = [
            SimulatedDevice(
                url,
                d.mqtt_id,
                node=settings.NODE_ID,
                name=d.name,
                delay=delay,
                fail=fail,
                silent=silent,
                username=accounts[d.mqtt_id][0],
                password=accounts[d.mqtt_id][1],
                out=lambda line: self.stdout.write(line),
            )
            for d in devices
        ]
        for sim in sims:
            sim.start()
        self.stdout.write(f"playing {', '.join(d.mqtt_id for d in devices)}; Ctrl-C to stop")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            for sim in sims:
                sim.stop()
