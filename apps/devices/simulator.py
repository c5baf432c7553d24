"""Simulated devices (docs/devices.md, "Device simulator"): each one an MQTT client that
announces itself ``online`` (retained) with a last will ``offline``, subscribes its cue topic,
prints what a device would do, and acks ``done`` after ``delay`` seconds, or ``failed``
(``fail``), or never (``silent``). Like a real device it ignores a cue past its
``expires_at`` and a cue id it has seen. With a broker that has the ACL (docs/devices.md,
"Broker security") each logs in as its device, with that device's password."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from creatorcommerce.mqtt import new_client, parse_mqtt_url

from .transport import topic

WHAT_IT_DOES = {
    "pulse": "pulses",
    "flash": "flashes",
    "urgency": "shows urgency",
    "tap": "taps the presenter",
    "route": "routes the mics",
}


def load_credentials(path) -> dict[str, str]:
    """``{mqtt_id: password}`` from a JSON file (``mqtt_auth --reset-credentials`` writes
    one); ``ValueError`` saying what is wrong with it."""
    try:
        with open(path) as handle:
            passwords = json.load(handle)
    except OSError as error:
        raise ValueError(f"Cannot read {path}: {error.strerror}.") from None
    except ValueError:
        raise ValueError(f"{path} is not JSON.") from None
    if not isinstance(passwords, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in passwords.items()
    ):
        raise ValueError(f'{path} must be a JSON object {{"<mqtt_id>": "<password>"}}.')
    return passwords


class SimulatedDevice:
    def __init__(
        self,
        url: str,
        mqtt_id: str,
        *,
        node: str,
        name: str = "",
        delay: float = 0.0,
        fail: bool = False,
        silent: bool = False,
        username: str | None = None,
        password: str | None = None,
        out: Callable[[str], None] = print,
    ):
        self.target = parse_mqtt_url(url)
        self.mqtt_id, self.node, self.name = mqtt_id, node, name or mqtt_id
        self.delay, self.fail, self.silent, self.out = delay, fail, silent, out
        self.seen: set = set()
        self.received: list[dict] = []  # the cues it played (each id once, none expired)
        self.deliveries: list = []  # the ids of everything the broker delivered, as delivered
        self.ready = threading.Event()
        # A persistent session, as a real device should have: cues published while it
        # reconnects are queued by the broker (it still ignores expired ones).
        self.client = new_client(self.target, client_id=f"sim-{node}-{mqtt_id}", clean_session=False)
        if username:
            self.client.username_pw_set(username, password)
        self.client.will_set(self._topic("status"), "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=0.5, max_delay=5)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self.ready.set()
        self.client.on_message = self._on_message

    def _topic(self, leaf: str) -> str:
        return topic(self.mqtt_id, leaf, node=self.node)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.out(f"{self.name}: the broker refused us ({reason_code})")
            return
        client.publish(self._topic("status"), "online", qos=1, retain=True)
        client.subscribe(self._topic("cue"), qos=1)

    def _on_message(self, client, userdata, message):
        if message.retain:
            return  # commands are never retained; a retained one is not ours to play
        try:
            cue = json.loads(message.payload)
            cue_id = cue["id"]
            expires_at = datetime.fromisoformat(cue["expires_at"].replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError, AttributeError):
            self.out(f"{self.name}: ignored a malformed cue")
            return
        self.deliveries.append(cue_id)  # every delivery, repeats and late ones too
        if cue_id in self.seen:
            return
        self.seen.add(cue_id)
        if expires_at <= datetime.now(UTC):
            self.out(f"{self.name}: ignored cue {cue_id} (expired)")
            return
        self.received.append(cue)
        self.out(f"{self.name} {WHAT_IT_DOES.get(cue.get('kind'), cue.get('kind'))} {cue.get('params')} (cue {cue_id})")
        if self.silent:
            return
        ack = (
            {"id": cue_id, "status": "failed", "detail": "simulated failure"}
            if self.fail
            else {"id": cue_id, "status": "done"}
        )
        if self.delay > 0:
            threading.Timer(self.delay, self._ack, args=(ack,)).start()
        else:
            self._ack(ack)

    def _ack(self, ack: dict) -> None:
        self.client.publish(self._topic("ack"), json.dumps(ack), qos=1, retain=False)

    def start(self) -> None:
        self.client.connect_async(self.target.host, self.target.port, keepalive=10)
        self.client.loop_start()

    def stop(self, *, clean: bool = True) -> None:
        """Disconnect. ``clean`` says ``offline`` first (retained) and, if the broker did not
        confirm it within 10 s, drops the connection without a DISCONNECT so that the broker
        sends the last will ``offline`` instead; ``clean=False`` just disconnects."""
        said = False
        if clean and self.client.is_connected():
            info = self.client.publish(self._topic("status"), "offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # the connection went meanwhile
                info.wait_for_publish(10)
                said = info.is_published()
        if said or not clean:
            self.client.disconnect()
            self.client.loop_stop()
            return
        # "offline" was not confirmed: leave without a DISCONNECT, so that the broker
        # publishes the last will instead (a clean disconnect would cancel it).
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
