"""The demo's room (apps/devices/demo.py): seeded once, and the LED strip flashes on an
order in the demo stream (docs/devices.md)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.devices.models import Cue, CueRule, Device, Room
from apps.devices.services import cues_for_event

pytestmark = pytest.mark.django_db


def test_seed_demo_makes_the_room_once_and_an_order_in_the_demo_stream_flashes_the_led():
    call_command("seed_demo")
    call_command("seed_demo")
    room = Room.objects.get(name="Demo studio")
    assert sorted(Device.objects.filter(room=room).values_list("mqtt_id", flat=True)) == [
        "demo-haptic",
        "demo-led",
        "demo-light",
    ]
    assert CueRule.objects.filter(shop=room.shop).count() == 4
    rule = CueRule.objects.get(event_type="order.placed", device__mqtt_id="demo-led")
    payload = {"shop": room.shop_id, "stream": rule.stream_id, "lines": []}
    cue_ids = cues_for_event(event_id=10**9, event_type="order.placed", payload=payload)
    assert {Cue.objects.get(pk=pk).device.mqtt_id for pk in cue_ids} == {"demo-led", "demo-haptic"}
    assert Cue.objects.get(pk__in=cue_ids, device__mqtt_id="demo-led").kind == "flash"
