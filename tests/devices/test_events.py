"""The exact events the devices' services send (docs/events.md, "Devices"), and where the
cue task goes."""

from __future__ import annotations

import pytest

from apps.devices.dispatch import dispatch
from apps.devices.services import cue_fire, cue_record_ack, cues_sweep, device_status_set
from creatorcommerce.fields import iso_utc
from tests.helpers import captured_events

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _log_driver(settings):
    settings.MQTT_URL = ""
    settings.DEVICES_SIMULATE_IN_PROCESS = False


def test_sent_acked_failed(led, shop, room):
    base = {"shop": shop.pk, "room": room.pk, "device": led.pk, "stream": None}
    acked, silent = cue_fire(device=led, kind="pulse"), cue_fire(device=led, kind="flash")
    with captured_events() as events:
        dispatch(acked.pk)
        dispatch(silent.pk)
        cue_record_ack(mqtt_id=led.mqtt_id, message={"id": acked.pk, "status": "done"})
        cue_record_ack(mqtt_id=led.mqtt_id, message={"id": acked.pk, "status": "done"})  # a duplicate: nothing
        cues_sweep(now=silent.expires_at)
    acked.refresh_from_db()
    silent.refresh_from_db()
    # A cue of no stream goes to the shop's tools and to every control room of the shop.
    groups = [f"shop.{shop.pk}", f"control.shop.{shop.pk}"]
    assert events == [
        (
            "cue.sent",
            {
                **base,
                "cue": acked.pk,
                "kind": "pulse",
                "event": "manual",
                "sent_at": iso_utc(acked.sent_at),
                "expires_at": iso_utc(acked.expires_at),
            },
            groups,
        ),
        (
            "cue.sent",
            {
                **base,
                "cue": silent.pk,
                "kind": "flash",
                "event": "manual",
                "sent_at": iso_utc(silent.sent_at),
                "expires_at": iso_utc(silent.expires_at),
            },
            groups,
        ),
        ("cue.acked", {**base, "cue": acked.pk, "kind": "pulse", "latency_ms": acked.latency_ms, "detail": ""}, groups),
        ("cue.failed", {**base, "cue": silent.pk, "kind": "flash", "detail": "no ack within 10 s"}, groups),
    ]


def test_device_status_changed_only_on_a_change(led, shop, room):
    with captured_events() as events:
        assert device_status_set(mqtt_id=led.mqtt_id, online=True)
        assert not device_status_set(mqtt_id=led.mqtt_id, online=True)
        assert device_status_set(mqtt_id=led.mqtt_id, online=False)
    payload = {"device": led.pk, "shop": shop.pk, "room": room.pk}
    assert events == [
        ("device.status_changed", {**payload, "online": True}, [f"shop.{shop.pk}", f"control.shop.{shop.pk}"]),
        ("device.status_changed", {**payload, "online": False}, [f"shop.{shop.pk}", f"control.shop.{shop.pk}"]),
    ]


def test_a_streams_cue_goes_to_its_control_room_and_never_to_viewers(led, shop, live_stream):
    """docs/devices.md, "Control room": ``control.<stream>``, not ``stream.<id>`` nor the
    pinned SKUs' groups that viewers' broadcasters join."""
    cue = cue_fire(device=led, kind="pulse", stream=live_stream)
    with captured_events() as events:
        dispatch(cue.pk)
        cue_record_ack(mqtt_id=led.mqtt_id, message={"id": cue.pk, "status": "done"})
    assert [(event_type, groups) for event_type, _payload, groups in events] == [
        ("cue.sent", [f"shop.{shop.pk}", f"control.{live_stream.pk}"]),
        ("cue.acked", [f"shop.{shop.pk}", f"control.{live_stream.pk}"]),
    ]


def test_send_cue_is_routed_to_the_cues_queue_which_a_plain_worker_consumes():
    from creatorcommerce.celery import app

    assert app.amqp.router.route({}, "apps.devices.tasks.send_cue")["queue"].name == "cues"
    # A worker started without -Q consumes every declared queue.
    assert {"celery", "cues"} <= set(app.amqp.queues)
