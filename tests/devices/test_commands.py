"""The devices' commands refuse to start without a broker, saying why (docs/devices.md)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("command", ["cue_listener", "device_simulator"])
def test_without_mqtt_url_the_commands_explain(settings, command):
    settings.MQTT_URL = ""
    with pytest.raises(CommandError, match="MQTT_URL is not set"):
        call_command(command)


def test_the_simulator_needs_devices(settings):
    settings.MQTT_URL = "mqtt://127.0.0.1:1883"
    with pytest.raises(CommandError, match="No devices"):
        call_command("device_simulator", "--room", "999999")
