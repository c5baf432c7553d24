"""The devices app's demo step: a studio with simulated devices and cue rules on the demo
stream; the LED strip flashes on every ``order.placed`` in it (docs/devices.md). Without
``MQTT_URL`` the cues go to the log driver and a simulated device acks them in-process;
with it, ``manage.py device_simulator --room <id>`` plays the devices. Idempotent."""

from __future__ import annotations

from .models import CueRule, Device, Room
from .services import cue_rule_create, device_create, room_create

ROOM = "Demo studio"
# (MQTT id, name, kind)
DEVICES = [
    ("demo-led", "LED strip", Device.Kind.LED_STRIP),
    ("demo-light", "Urgency light", Device.Kind.LIGHT),
    ("demo-haptic", "Presenter wristband", Device.Kind.HAPTIC),
]
# (event type, device, kind, params, stock threshold)
RULES = [
    ("order.placed", "demo-led", "flash", {"color": "#00ff88", "count": 2}, None),
    ("deal.opened", "demo-led", "pulse", {"color": "#ff3366", "duration_ms": 1500}, None),
    ("order.placed", "demo-haptic", "tap", {"pattern": "short"}, None),
    ("stock.changed", "demo-light", "urgency", {"level": 2}, 5),
]


def seed(context: dict) -> dict:
    shop = context["users"]["creator"].shop
    stream = context["stream"]
    room = Room.objects.filter(shop=shop, name=ROOM).first() or room_create(shop=shop, name=ROOM)
    devices = {}
    for mqtt_id, name, kind in DEVICES:
        device = Device.objects.filter(mqtt_id=mqtt_id).first()
        if device is None:
            device, _password = device_create(room=room, name=name, kind=kind, mqtt_id=mqtt_id)
        devices[mqtt_id] = device
    for event_type, mqtt_id, kind, params, threshold in RULES:
        device = devices[mqtt_id]
        if CueRule.objects.filter(shop=shop, event_type=event_type, device=device, kind=kind).exists():
            continue
        cue_rule_create(
            shop=shop,
            event_type=event_type,
            device=device,
            kind=kind,
            params=params,
            stream=None if event_type == "stock.changed" else stream,
            available_at_most=threshold,
        )
    return {
        "device_room": room,
        "summary": [
            f"device room {room.name!r} (id {room.pk}): LED strip flashes on every order in the demo stream; "
            f"with MQTT_URL, play it with: python manage.py device_simulator --room {room.pk}"
        ],
    }
