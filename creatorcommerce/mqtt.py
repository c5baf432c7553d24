"""MQTT connection settings shared by the health check and the device transport."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def parse_mqtt_url(url: str) -> MqttTarget:
    """``mqtt://user:pass@host:1883`` or ``mqtts://host:8883``; the user and password are
    percent-decoded (a ``@`` or ``:`` in them is written ``%40``, ``%3A``)."""
    parsed = urlparse(url)
    if parsed.scheme not in {"mqtt", "mqtts"} or not parsed.hostname:
        raise ValueError(f"MQTT_URL must look like mqtt://host:1883, not {shown_url(url)!r}")
    tls = parsed.scheme == "mqtts"
    return MqttTarget(
        host=parsed.hostname,
        port=parsed.port or (8883 if tls else 1883),
        username=unquote(parsed.username) if parsed.username is not None else None,
        password=unquote(parsed.password) if parsed.password is not None else None,
        tls=tls,
    )


def shown_url(url: str) -> str:
    """``url`` without its password, for logs and messages."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    netloc = parsed.netloc.rsplit("@", 1)[1]
    return parsed._replace(netloc=f"{parsed.username}:***@{netloc}").geturl()


def new_client(target: MqttTarget, client_id: str = "", *, clean_session: bool | None = None) -> mqtt.Client:
    """A paho client (MQTT 3.1.1) for ``target``; ``clean_session=False`` (with a fixed
    ``client_id``) asks the broker to keep its subscriptions and queue QoS 1 messages while
    it is disconnected."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session)
    if target.username:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        client.tls_set()
    return client


def mqtt_ping(url: str, timeout: float = 2.0) -> None:
    """Connect, wait for the broker's CONNACK, disconnect; raise if that fails."""
    target = parse_mqtt_url(url)
    client = new_client(target)
    connected = threading.Event()
    result: dict = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        result["rc"] = reason_code
        connected.set()

    client.on_connect = on_connect
    client.connect(target.host, target.port, keepalive=10)
    client.loop_start()
    try:
        if not connected.wait(timeout):
            raise TimeoutError(f"no CONNACK from {target.host}:{target.port} within {timeout}s")
        if result["rc"].is_failure:
            raise ConnectionError(f"broker refused the connection: {result['rc']}")
    finally:
        client.disconnect()
        client.loop_stop()
