"""The devices API for creators (docs/devices.md, "API")."""

from __future__ import annotations

import pytest

from apps.devices.models import Cue
from apps.devices.services import device_set_active, device_status_set
from tests.factories import CreatorFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _log_driver(settings):
    settings.MQTT_URL = ""
    settings.DEVICES_SIMULATE_IN_PROCESS = True


@pytest.fixture
def as_creator(api_client, shop):
    api_client.force_login(shop.owner)
    return api_client


def test_devices_list_with_status(as_creator, led, room):
    device_status_set(mqtt_id=led.mqtt_id, online=True)
    led.refresh_from_db()
    CreatorFactory()  # another shop's devices never show
    response = as_creator.get("/api/v1/devices/")
    assert response.status_code == 200
    assert response.json() == [
        {
            "id": led.pk,
            "name": "LED strip",
            "kind": "led_strip",
            "room": room.pk,
            "online": True,
            "last_seen": led.last_seen.isoformat().replace("+00:00", "Z"),
        }
    ]


def test_fire_a_cue_by_hand_and_read_the_log(as_creator, led, live_stream, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_creator.post(
            f"/api/v1/devices/{led.pk}/cues/", {"kind": "flash", "params": {"count": 3}}, format="json"
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["params"], body["event"]) == ("flash", {"count": 3}, "manual")
    # Embedded mode: the log driver sent it and the in-process simulated device acked it.
    assert Cue.objects.get(pk=body["id"]).status == Cue.Status.ACKED
    cues = as_creator.get("/api/v1/devices/cues/").json()
    assert [(c["id"], c["status"]) for c in cues] == [(body["id"], "acked")]
    assert as_creator.get(f"/api/v1/devices/cues/?stream={live_stream.pk}").json() == []
    assert Cue.objects.count() == 1


def test_errors(as_creator, api_client, led):
    bad = as_creator.post(f"/api/v1/devices/{led.pk}/cues/", {"kind": "flash", "params": {"count": 99}}, format="json")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_cue_params")
    bad = as_creator.post(f"/api/v1/devices/{led.pk}/cues/", {"kind": "boom"}, format="json")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_cue_kind")
    bad = as_creator.post(f"/api/v1/devices/{led.pk}/cues/", {"params": {}}, format="json")
    assert bad.status_code == 400 and "code" in bad.json()
    device_set_active(device=led, active=False)
    bad = as_creator.post(f"/api/v1/devices/{led.pk}/cues/", {"kind": "flash"}, format="json")
    assert (bad.status_code, bad.json()["code"]) == (400, "device_disabled")
    device_set_active(device=led, active=True)
    other = CreatorFactory()
    api_client.force_login(other)
    missing = api_client.post(f"/api/v1/devices/{led.pk}/cues/", {"kind": "flash"}, format="json")
    assert (missing.status_code, missing.json()["code"]) == (404, "device_not_found")
    assert api_client.get("/api/v1/devices/").json() == []
    api_client.force_login(UserFactory())
    assert api_client.get("/api/v1/devices/").status_code == 403
    api_client.force_login(other)
    bad = api_client.get("/api/v1/devices/cues/?stream=x")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_stream")
    assert Cue.objects.count() == 0
