"""How cues leave the node (docs/devices.md, "Topics and payloads").

With ``MQTT_URL`` set, one long-lived paho-mqtt client per process publishes each cue with
QoS 1, never retained, and waits (``DEVICES_PUBACK_TIMEOUT_SECONDS``) for the broker's
PUBACK; the client reconnects by itself with backoff (``MQTT_RECONNECT_*``). Without
``MQTT_URL`` (the embedded default) the log driver only logs the cue.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading

import paho.mqtt.client as mqtt
from django.conf import settings

from creatorcommerce.fields import iso_utc
from creatorcommerce.mqtt import new_client, parse_mqtt_url

log = logging.getLogger(__name__)


def topic(device: str, leaf: str, node: str | None = None) -> str:
    """``cc/<node>/devices/<device>/<leaf>``; ``leaf`` is ``cue``, ``ack`` or ``status``."""
    return f"cc/{node or settings.NODE_ID}/devices/{device}/{leaf}"


def cue_message(cue) -> dict:
    """The cue as its device receives it (docs/devices.md)."""
    return {
        "id": cue.pk,
        "kind": cue.kind,
        "params": cue.params,
        "event": cue.event_type,
        "issued_at": iso_utc(cue.issued_at),
        "expires_at": iso_utc(cue.expires_at),
    }


class PublishFailed(ConnectionError):
    """The broker was not reachable, or did not confirm the publish in time."""


class LogDriver:
    name = "log"
    url = ""

    def ready(self) -> None:
        pass

    def publish(self, topic: str, payload: dict) -> None:
        log.info("cue (log driver, no MQTT_URL) %s %s", topic, json.dumps(payload, sort_keys=True))

    def close(self) -> None:
        pass


class MqttDriver:
    """One paho client, connected in the background, reconnecting with backoff."""

    name = "mqtt"

    def __init__(self, url: str):
        self.url = url
        target = parse_mqtt_url(url)
        client_id = f"cc-{settings.NODE_ID}-cues-{os.getpid()}-{secrets.token_hex(3)}"
        self.client = new_client(target, client_id=client_id)
        self.client.reconnect_delay_set(
            min_delay=settings.MQTT_RECONNECT_MIN_SECONDS, max_delay=settings.MQTT_RECONNECT_MAX_SECONDS
        )
        self.connected = threading.Event()
        self.discarded = False
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_async(target.host, target.port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("MQTT broker refused the cue publisher: %s", reason_code)
            return
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        log.warning("cue publisher lost the MQTT broker (%s); reconnecting", reason_code)

    def ready(self) -> None:
        """Wait for the connection; ``PublishFailed`` if it does not come in time (nothing
        has left this process then)."""
        timeout = settings.DEVICES_PUBACK_TIMEOUT_SECONDS
        if not self.connected.wait(timeout):
            raise PublishFailed(f"not connected to the MQTT broker within {timeout}s")

    def publish(self, topic: str, payload: dict) -> None:
        timeout = settings.DEVICES_PUBACK_TIMEOUT_SECONDS
        self.ready()
        info = self.client.publish(topic, json.dumps(payload), qos=1, retain=False)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.discard()  # paho keeps a QoS 1 message it could not write, to send later
            raise PublishFailed(f"publish refused: {mqtt.error_string(info.rc)}")
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            self.discard()
            raise PublishFailed(str(exc)) from exc
        if not info.is_published():
            self.discard()
            raise PublishFailed(f"no PUBACK within {timeout}s")

    def discard(self) -> None:
        """Forget this client and what it holds in flight: paho would publish an
        unconfirmed QoS 1 message again by itself after a reconnect, however late; the
        task's retry decides instead (``dispatch``). The next cue makes a new client."""
        self.discarded = True
        try:
            self.close()
        except Exception:  # already broken: nothing to release
            log.debug("closing a discarded MQTT client failed", exc_info=True)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


_drivers: dict[int, LogDriver | MqttDriver] = {}
_lock = threading.Lock()


def driver():
    """This process's driver, made on first use (and again after a fork, or when
    ``MQTT_URL`` changed)."""
    pid = os.getpid()
    url = settings.MQTT_URL or ""
    with _lock:
        current = _drivers.get(pid)
        if current is None or getattr(current, "url", "") != url or getattr(current, "discarded", False):
            if current is not None:
                current.close()
            current = _drivers[pid] = MqttDriver(url) if url else LogDriver()
        return current


def close_driver() -> None:
    """Close and forget this process's driver (tests; a worker shutting down)."""
    with _lock:
        current = _drivers.pop(os.getpid(), None)
    if current is not None:
        current.close()
