"""The devices panel of the creator's control room (docs/devices.md, "Control room"): the
shop's rooms and devices with their status, the live cue log and buttons to fire a cue by
hand. Registered with the streams app's control-room hooks (apps/streams/panels.py), so
streams never imports devices (docs/architecture.md, "Layers")."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string

from .models import Device, Room
from .params import KINDS_BY_DEVICE
from .selectors import cues_of, device_body

# The control room keeps this many cues in its log (newest first).
CONTROL_LOG_LIMIT = 50

_STATUS = {"cue.sent": "sent", "cue.acked": "acked", "cue.failed": "failed"}


def devices_panel(request, stream) -> str | None:
    """The panel, for the stream's creator (the devices API answers for their own shop);
    nothing when the shop has no device."""
    shop = stream.shop
    if request.user.pk != shop.owner_id:
        return None
    devices = list(Device.objects.filter(room__shop=shop).order_by("room__name", "room_id", "name", "pk"))
    if not devices:
        return None
    rooms = {room.pk: room.name for room in Room.objects.filter(shop=shop)}
    initial = {
        "stream": stream.pk,
        # Embedded mode (no MQTT_URL): the in-process simulated device acks, nothing reports status.
        "simulated": not settings.MQTT_URL and settings.DEVICES_SIMULATE_IN_PROCESS,
        "limit": CONTROL_LOG_LIMIT,
        "rooms": rooms,
        "devices": [device_body(d) for d in devices],
        "kind_labels": dict(Device.Kind.choices),
        "cue_kinds": {kind: list(kinds) for kind, kinds in KINDS_BY_DEVICE.items()},
        "cues": cues_of(shop, stream_id=stream.pk, streamless=True, limit=CONTROL_LOG_LIMIT),
    }
    return render_to_string("devices/control_panel.html", {"initial": initial}, request=request)


def cue_relay(message: dict) -> dict:
    """``cue.sent`` / ``cue.acked`` / ``cue.failed`` → ``{"type": "cue", ...}`` on the control
    room's socket (docs/streams.md, "The WebSocket protocol")."""
    payload = message["payload"]
    cue = {
        "id": payload["cue"],
        "device": payload["device"],
        "room": payload["room"],
        "stream": payload["stream"],
        "kind": payload["kind"],
        "status": _STATUS[message["type"]],
    }
    for key in ("event", "sent_at", "expires_at", "latency_ms", "detail"):
        if key in payload:
            cue[key] = payload[key]
    return {"type": "cue", "cue": cue, "at": message.get("created_at")}


def device_relay(message: dict) -> dict:
    """``device.status_changed`` → ``{"type": "device", ...}``."""
    payload = message["payload"]
    return {
        "type": "device",
        "id": payload["device"],
        "room": payload["room"],
        "online": payload["online"],
        "at": message.get("created_at"),
    }
