"""Rooms, devices and cue rules in the admin (docs/devices.md): a creator's own only, written
through the services, the rules' requirements as field errors, the device's password shown
once."""

from __future__ import annotations

import pytest

from apps.devices.models import CueRule, Device
from apps.devices.services import device_check_password, device_create, room_create
from tests.factories import CreatorFactory
from tests.helpers import page_form

pytestmark = pytest.mark.django_db
RULE_ADD = "/admin/devices/cuerule/add/"


def _rule_form(client, **overrides):
    data = page_form(client, RULE_ADD)
    data.update(
        {
            "event_type": "order.placed",
            "kind": "flash",
            "params": '{"count": 2}',
            "priority": "5",
            "timeout_s": "10",
            "is_active": "on",
        }
    )
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_creator_maps_a_rule_to_their_own_device(client, shop, led, live_stream):
    other_room = room_create(shop=CreatorFactory().shop, name="Theirs")
    theirs, _ = device_create(room=other_room, name="Their LED", kind="led_strip", mqtt_id="their-led")
    client.force_login(shop.owner)
    page = client.get(RULE_ADD).content.decode()
    assert led.mqtt_id in page and "their-led" not in page
    response = client.post(RULE_ADD, _rule_form(client, device=str(led.pk), stream=str(live_stream.pk)))
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = CueRule.objects.get()
    assert (rule.shop, rule.device, rule.stream, rule.params) == (shop, led, live_stream, {"count": 2})
    refused = client.post(RULE_ADD, _rule_form(client, device=str(theirs.pk)))
    assert refused.status_code == 200 and CueRule.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"params": '{"count": 99}'}, "params"),
        ({"params": '{"colour": "red"}'}, "params"),
        ({"available_at_most": "3"}, "available_at_most"),
    ],
)
def test_rule_requirements_are_field_errors(client, shop, led, overrides, field):
    client.force_login(shop.owner)
    response = client.post(RULE_ADD, _rule_form(client, device=str(led.pk), **overrides))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert CueRule.objects.count() == 0


def test_adding_a_device_shows_its_password_once_and_stores_the_hash(client, shop, room):
    client.force_login(shop.owner)
    data = page_form(client, "/admin/devices/device/add/")
    data.update({"room": str(room.pk), "name": "Wristband", "kind": "haptic", "mqtt_id": "wrist-1"})
    response = client.post("/admin/devices/device/add/", data, follow=True)
    assert response.status_code == 200
    [message] = [str(m) for m in response.context["messages"] if "MQTT password of wrist-1" in str(m)]
    password = message.rsplit(": ", 1)[1]
    device = Device.objects.get(mqtt_id="wrist-1")
    assert password not in device.password_hash and device_check_password(device, password)


def test_the_password_reset_and_disable_actions_go_through_the_services(client, shop, led):
    from apps.devices import mosquitto

    client.force_login(shop.owner)
    changelist = "/admin/devices/device/"
    response = client.post(changelist, {"action": "reset_password", "_selected_action": [led.pk]}, follow=True)
    [message] = [str(m) for m in response.context["messages"] if f"New MQTT password of {led.mqtt_id}" in str(m)]
    password = message.rsplit(": ", 1)[1]
    device = Device.objects.get(pk=led.pk)
    assert device_check_password(device, password)
    assert mosquitto.password_matches(password, device.mqtt_password_hash)  # what the broker's file gets
    client.post(changelist, {"action": "disable", "_selected_action": [led.pk]}, follow=True)
    assert not Device.objects.get(pk=led.pk).is_active
    client.post(changelist, {"action": "enable", "_selected_action": [led.pk]}, follow=True)
    assert Device.objects.get(pk=led.pk).is_active
