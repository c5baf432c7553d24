"""``manage.py mqtt_auth --out DIR``: write Mosquitto's password and ACL files for this node
(docs/devices.md, "Broker security"; deploy/mosquitto/README.md)."""

from __future__ import annotations

import grp
import json
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.devices import mosquitto
from apps.devices.models import Device
from apps.devices.selectors import broker_devices
from apps.devices.services import device_reset_password
from creatorcommerce.mqtt import parse_mqtt_url

PASSWORD_FILE = "passwd"
ACL_FILE = "acl"


def write_atomically(path: Path, text: str, *, mode: int, gid: int | None = None) -> None:
    """Replace ``path`` in one step, so a broker reloading meanwhile reads the old file or the
    new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        if gid is not None:
            os.chown(tmp, -1, gid)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Command(BaseCommand):
    help = (
        "Write Mosquitto's password_file and acl_file for this node: the server account "
        "(MQTT_URL's user) and every active device. Reload Mosquitto (SIGHUP) afterwards."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help=f"directory for {PASSWORD_FILE!r} and {ACL_FILE!r}")
        parser.add_argument(
            "--group", help="group that may read the files (Mosquitto reads them as its own user: e.g. mosquitto)"
        )
        parser.add_argument(
            "--reset-credentials",
            metavar="FILE",
            help="first give the chosen devices new passwords and write them to FILE as JSON "
            "{mqtt_id: password} (for device_simulator --credentials); their old passwords stop working",
        )
        parser.add_argument("--room", type=int, help="with --reset-credentials: the devices of this room")
        parser.add_argument(
            "--device", action="append", default=[], help="with --reset-credentials: this MQTT device id (repeatable)"
        )

    def handle(self, *args, out, group, reset_credentials, room, device, **options):
        server = self._server_account()
        out_dir = Path(out)
        if not out_dir.is_dir():
            raise CommandError(f"{out_dir} is not a directory.")
        gid = None
        if group:
            try:
                gid = grp.getgrnam(group).gr_gid
            except KeyError:
                raise CommandError(f"No group {group!r}.") from None
        if reset_credentials:
            self._reset(Path(reset_credentials), room=room, mqtt_ids=device)
        elif room is not None or device:
            raise CommandError("--room and --device choose the devices for --reset-credentials.")

        devices, without_hash = broker_devices()
        if any(mqtt_id == server[0] for mqtt_id, _ in devices):
            raise CommandError(f"A device's MQTT id is the server's username {server[0]!r}: rename one.")
        try:
            passwd = mosquitto.password_file([(server[0], mosquitto.password_hash(server[1])), *devices])
            acl = mosquitto.acl_file(node=settings.NODE_ID, server=server[0], devices=[m for m, _ in devices])
        except ValueError as error:
            raise CommandError(str(error)) from None
        mode = 0o640 if gid is not None else 0o600
        write_atomically(out_dir / PASSWORD_FILE, passwd, mode=mode, gid=gid)
        write_atomically(out_dir / ACL_FILE, acl, mode=mode, gid=gid)
        self.stdout.write(
            f"wrote {out_dir / PASSWORD_FILE} and {out_dir / ACL_FILE}: the server account {server[0]!r} "
            f"and {len(devices)} device(s) of node {settings.NODE_ID}"
        )
        if without_hash:
            self.stderr.write(
                f"left out (no broker password yet; reset their MQTT password): {', '.join(without_hash)}"
            )
        self.stdout.write("reload Mosquitto to apply them: kill -HUP <mosquitto pid> (or systemctl reload mosquitto)")

    def _server_account(self) -> tuple[str, str]:
        if not settings.MQTT_URL:
            raise CommandError("MQTT_URL is not set: it names the server's own MQTT account (mqtt://user:pass@host).")
        target = parse_mqtt_url(settings.MQTT_URL)
        if not target.username or not target.password:
            raise CommandError("MQTT_URL has no user:password: the server needs an account of its own on the broker.")
        return target.username, target.password

    def _reset(self, path: Path, *, room: int | None, mqtt_ids: list[str]) -> None:
        if room is None and not mqtt_ids:
            raise CommandError(
                "--reset-credentials resets real devices' passwords: choose them with --room or --device."
            )
        devices = Device.objects.filter(is_active=True).order_by("mqtt_id")
        if room is not None:
            devices = devices.filter(room_id=room)
        if mqtt_ids:
            devices = devices.filter(mqtt_id__in=mqtt_ids)
        devices = list(devices)
        missing = sorted(set(mqtt_ids) - {d.mqtt_id for d in devices})
        if missing or not devices:
            raise CommandError(f"No active device to reset{': ' + ', '.join(missing) if missing else ''}.")
        credentials = {d.mqtt_id: device_reset_password(device=d) for d in devices}
        write_atomically(path, json.dumps(credentials, indent=2) + "\n", mode=0o600)
        self.stdout.write(f"new passwords of {', '.join(credentials)} written to {path}")
