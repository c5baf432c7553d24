"""Real checks of each backing service, for ``GET /healthz``."""

from __future__ import annotations

import asyncio
import logging
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections

TIMEOUT = 2.0
log = logging.getLogger(__name__)


def check_db() -> str:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")  # raw on purpose: a round trip that names no table
        cursor.fetchone()
    return "ok"


async def _layer_roundtrip() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel(prefix="healthz.")
    token = uuid.uuid4().hex
    await layer.send(channel, {"type": "healthz.ping", "token": token})
    message = await asyncio.wait_for(layer.receive(channel), TIMEOUT)
    if message.get("token") != token:
        raise RuntimeError("channel layer returned a different message")


def check_channel_layer() -> str:
    async_to_sync(_layer_roundtrip)()
    return "ok"


def check_broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "eager"
    from creatorcommerce.celery import app

    with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=TIMEOUT)
    return "ok"


def check_mqtt() -> str:
    if not settings.MQTT_URL:
        return "disabled"
    from creatorcommerce.mqtt import mqtt_ping

    mqtt_ping(settings.MQTT_URL, timeout=TIMEOUT)
    return "ok"


CHECKS = {
    "db": check_db,
    "channel_layer": check_channel_layer,
    "broker": check_broker,
    "mqtt": check_mqtt,
}


def run_checks() -> tuple[dict, list[str]]:
    """Every check's status, and the names of those that failed."""
    report: dict = {}
    down: list[str] = []
    for name, check in CHECKS.items():
        try:
            report[name] = check()
        except Exception as exc:  # any failure of the service is "down", never a 500
            # The details (hosts, user names, URLs with passwords) go to the log only: this
            # endpoint is public.
            log.warning("health check %s failed: %s", name, exc, exc_info=True)
            report[name] = f"down: {type(exc).__name__}"
            down.append(name)
    return report, down
