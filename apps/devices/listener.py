"""The ack listener (docs/devices.md, "Acks and status"): one MQTT client subscribed to
``cc/<node>/devices/+/ack`` and ``cc/<node>/devices/+/status`` (QoS 1) that records acks
and device availability, and sweeps cues with no ack by their expiry every second.
``manage.py cue_listener`` runs it as its own process; tests run it in a thread."""

from __future__ import annotations

import json
import logging
import threading

from django.conf import settings
from django.db import connection

from creatorcommerce.mqtt import new_client, parse_mqtt_url

from .services import cue_record_ack, cues_sweep, device_status_set
from .transport import topic

log = logging.getLogger(__name__)

MAX_PAYLOAD = 4096  # bytes: an ack or a status is far smaller


class AckListener:
    def __init__(self, url: str, *, sweep_every: float = 1.0):
        self.target = parse_mqtt_url(url)
        self.sweep_every = sweep_every
        # One persistent session per node, kept by the broker across reconnects and restarts
        # of this process: acks and statuses sent meanwhile are queued for it. Its client id
        # is fixed, so a restart takes the session over instead of leaving one behind; run
        # one listener per node (a second with the same id takes the session from the first).
        self.client = new_client(self.target, client_id=f"cc-{settings.NODE_ID}-listener", clean_session=False)
        self.client.reconnect_delay_set(
            min_delay=settings.MQTT_RECONNECT_MIN_SECONDS, max_delay=settings.MQTT_RECONNECT_MAX_SECONDS
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self._stop = threading.Event()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("MQTT broker refused the cue listener: %s", reason_code)
            return
        # Subscribed again on every (re)connect, whether or not the broker kept the session.
        client.subscribe([(topic("+", "ack"), 1), (topic("+", "status"), 1)])

    def _on_message(self, client, userdata, message):
        parts = message.topic.split("/")
        if len(parts) != 5:
            return
        mqtt_id, leaf = parts[3], parts[4]
        if len(message.payload) > MAX_PAYLOAD:
            log.warning("%s from %s is %d bytes: ignored", leaf, mqtt_id, len(message.payload))
            return
        try:
            if leaf == "ack":
                try:
                    body = json.loads(message.payload)
                except ValueError:
                    log.warning("ack from %s is not JSON", mqtt_id)
                    return
                outcome = cue_record_ack(mqtt_id=mqtt_id, message=body)
                log.debug("ack from %s: %s", mqtt_id, outcome)
            elif leaf == "status":
                state = message.payload.decode("utf-8", "replace").strip()
                if state in ("online", "offline"):
                    device_status_set(mqtt_id=mqtt_id, online=state == "online")
        except Exception:
            log.exception("cue listener could not record %s", message.topic)
        finally:
            connection.close()  # this thread's connection goes back (to the pool, if any)

    def start(self) -> None:
        self.client.connect_async(self.target.host, self.target.port, keepalive=30)
        self.client.loop_start()

    def sweep(self) -> dict:
        try:
            return cues_sweep()
        finally:
            connection.close()

    def run(self) -> None:
        """Until ``stop()``: listen, and sweep every ``sweep_every`` seconds."""
        self.start()
        try:
            while not self._stop.wait(self.sweep_every):
                try:
                    self.sweep()
                except Exception:
                    log.exception("cue sweep failed")
        finally:
            self.close()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
