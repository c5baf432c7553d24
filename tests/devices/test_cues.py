"""Cues without a broker (docs/devices.md): rules turn events into cues once per rule and
event, the log driver and the in-process simulated device, expiry, acks and the timeout
sweep. The same paths over a real Mosquitto are in test_mqtt.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.hashers import identify_hasher
from django.utils import timezone

from apps.devices.dispatch import dispatch
from apps.devices.exceptions import InvalidCue, InvalidCueRule
from apps.devices.models import Cue
from apps.devices.services import (
    cue_fire,
    cue_record_ack,
    cue_rule_create,
    cues_for_event,
    cues_sweep,
    device_check_password,
    device_create,
    device_reset_password,
)
from apps.streams.services import deal_open_now
from creatorcommerce.spine.models import OutboxEvent
from creatorcommerce.spine.tasks import apply_handler

pytestmark = pytest.mark.django_db

HANDLER = "apps.devices.handlers.cues_on_event"


@pytest.fixture(autouse=True)
def _log_driver(settings):
    settings.MQTT_URL = ""
    settings.DEVICES_SIMULATE_IN_PROCESS = True


def test_a_deal_opening_pulses_the_led_and_the_simulated_device_acks(
    pulse_rule, make_deal, led, django_capture_on_commit_callbacks
):
    deal = make_deal()
    with django_capture_on_commit_callbacks(execute=True):
        deal_open_now(deal=deal)
    cue = Cue.objects.get(device=led)
    assert (cue.kind, cue.params, cue.event_type, cue.rule_id) == (
        "pulse",
        {"color": "#ff0000"},
        "deal.opened",
        pulse_rule.pk,
    )
    assert cue.status == Cue.Status.ACKED
    assert cue.stream_id == pulse_rule.stream_id
    assert cue.expires_at - cue.issued_at == timedelta(seconds=10)
    assert cue.latency_ms is not None and cue.puback_at is not None


def test_without_the_in_process_simulation_a_cue_stays_sent_until_it_times_out(
    settings, pulse_rule, make_deal, led, django_capture_on_commit_callbacks
):
    settings.DEVICES_SIMULATE_IN_PROCESS = False
    with django_capture_on_commit_callbacks(execute=True):
        deal_open_now(deal=make_deal())
    cue = Cue.objects.get(device=led)
    assert cue.status == Cue.Status.SENT
    assert cues_sweep(now=cue.expires_at - timedelta(milliseconds=1))["timed_out"] == 0
    assert cues_sweep(now=cue.expires_at)["timed_out"] == 1
    cue.refresh_from_db()
    assert (cue.status, cue.detail) == (Cue.Status.FAILED, "no ack within 10 s")
    # An ack after the timeout changes nothing.
    assert cue_record_ack(mqtt_id=led.mqtt_id, message={"id": cue.pk, "status": "done"}) == "ignored"
    cue.refresh_from_db()
    assert cue.status == Cue.Status.FAILED


def test_a_duplicate_spine_delivery_makes_one_cue(pulse_rule, make_deal, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        deal_open_now(deal=make_deal())
    event = OutboxEvent.objects.get(type="deal.opened")
    assert apply_handler(event.pk, HANDLER) == "duplicate"
    # Even past the spine's own record: the unique (rule, event) makes no second cue.
    assert cues_for_event(event_id=event.pk, event_type=event.type, payload=event.payload) == []
    assert Cue.objects.count() == 1


def test_rules_filter_by_stream_sku_and_stock_threshold(shop, led, make_device, sku, live_stream):
    from apps.streams.services import stream_create

    other = stream_create(shop=shop, title="Other", starts_at=timezone.now() + timedelta(days=1))
    light = make_device(kind="light", name="Light")
    cue_rule_create(shop=shop, event_type="deal.opened", device=led, kind="pulse", stream=other)
    cue_rule_create(shop=shop, event_type="stock.changed", device=light, kind="urgency", sku=sku, available_at_most=5)
    deal = {"stream": live_stream.pk, "sku": sku.code, "sku_id": sku.pk, "deal_id": 1, "version": 1, "remaining": 5}
    assert cues_for_event(event_id=1, event_type="deal.opened", payload={**deal, "deal": None}) == []
    stock = {"sku": sku.code, "sku_id": sku.pk, "shop": shop.pk, "level": 1, "version": 3}
    assert cues_for_event(event_id=2, event_type="stock.changed", payload={**stock, "available": 6}) == []
    [cue_id] = cues_for_event(event_id=3, event_type="stock.changed", payload={**stock, "available": 5})
    assert Cue.objects.get(pk=cue_id).device == light
    # Another shop's event never reaches this shop's rules.
    assert cues_for_event(event_id=4, event_type="stock.changed", payload={**stock, "shop": shop.pk + 1000}) == []


def test_an_expired_cue_is_not_sent(led):
    cue = cue_fire(device=led, kind="flash", now=timezone.now() - timedelta(seconds=11))
    assert dispatch(cue.pk) == "expired"
    cue.refresh_from_db()
    assert (cue.status, cue.sent_at, cue.detail) == (Cue.Status.FAILED, None, "expired before it could be sent")


def test_acks_move_a_sent_cue_once_and_only_from_its_own_device(settings, led, make_device):
    settings.DEVICES_SIMULATE_IN_PROCESS = False
    other = make_device(kind="haptic", name="Wristband")
    done, failing = cue_fire(device=led, kind="pulse"), cue_fire(device=led, kind="tap")
    assert dispatch(done.pk) == dispatch(failing.pk) == "sent"
    assert cue_record_ack(mqtt_id=other.mqtt_id, message={"id": done.pk, "status": "done"}) == "ignored"
    assert cue_record_ack(mqtt_id=led.mqtt_id, message={"id": done.pk, "status": "done"}) == "acked"
    assert cue_record_ack(mqtt_id=led.mqtt_id, message={"id": done.pk, "status": "failed"}) == "ignored"
    assert (
        cue_record_ack(mqtt_id=led.mqtt_id, message={"id": failing.pk, "status": "failed", "detail": "no power"})
        == "failed"
    )
    assert cue_record_ack(mqtt_id=led.mqtt_id, message={"id": "x", "status": "done"}) == "invalid"
    assert cue_record_ack(mqtt_id=led.mqtt_id, message=["nope"]) == "invalid"
    done.refresh_from_db()
    failing.refresh_from_db()
    assert done.status == Cue.Status.ACKED and done.acked_at is not None
    assert (failing.status, failing.detail) == (Cue.Status.FAILED, "no power")
    led.refresh_from_db()
    assert led.last_seen is not None
    # Sent once: a second dispatch of a confirmed cue does nothing.
    assert dispatch(done.pk) == "skipped"


def test_params_are_checked_per_kind(shop, led):
    with pytest.raises(InvalidCue) as error:
        cue_fire(device=led, kind="pulse", params={"colour": "red"})
    assert (error.value.code, error.value.details["field"]) == ("invalid_cue_params", "colour")
    with pytest.raises(InvalidCue) as error:
        cue_fire(device=led, kind="tap", params={"count": 9})
    assert error.value.code == "invalid_cue_params"
    with pytest.raises(InvalidCue) as error:
        cue_fire(device=led, kind="explode")
    assert error.value.code == "invalid_cue_kind"
    with pytest.raises(InvalidCueRule) as error:
        cue_rule_create(shop=shop, event_type="deal.opened", device=led, kind="pulse", available_at_most=3)
    assert error.value.code == "invalid_threshold"
    with pytest.raises(InvalidCueRule) as error:
        cue_rule_create(shop=shop, event_type="order.refunded", device=led, kind="pulse")
    assert error.value.code == "invalid_event_type"
    assert Cue.objects.count() == 0


def test_device_passwords_are_stored_hashed(room):
    device, password = device_create(room=room, name="Light", kind="light", mqtt_id="light-1")
    # A Django password hash (PASSWORD_HASHERS; tests use a fast one), never the password.
    assert password not in device.password_hash
    assert identify_hasher(device.password_hash).algorithm == device.password_hash.split("$")[0]
    assert device_check_password(device, password)
    new = device_reset_password(device=device)
    device.refresh_from_db()
    assert device_check_password(device, new) and not device_check_password(device, password)


def test_the_handlers_rules_come_with_their_device_and_room(shop, led, make_device, room, sku):
    """``active_rules`` (one hand-written statement): the shop's active rules of the type, of
    active devices, highest priority first, each with its device's MQTT id and room."""
    from apps.devices.selectors import active_rules
    from apps.devices.services import device_set_active

    light = make_device(kind="light", name="Light")
    low = cue_rule_create(shop=shop, event_type="stock.changed", device=led, kind="urgency", sku=sku, priority=2)
    high = cue_rule_create(shop=shop, event_type="stock.changed", device=light, kind="flash", params={"count": 3})
    cue_rule_create(shop=shop, event_type="deal.opened", device=led, kind="pulse")
    off = make_device(kind="light", name="Off")
    cue_rule_create(shop=shop, event_type="stock.changed", device=off, kind="flash")
    device_set_active(device=off, active=False)
    rules = active_rules(shop.pk, "stock.changed")
    assert [r.pk for r in rules] == [high.pk, low.pk]
    assert [(r.device.mqtt_id, r.device.room_id, r.device.room.shop_id) for r in rules] == [
        (light.mqtt_id, room.pk, shop.pk),
        (led.mqtt_id, room.pk, shop.pk),
    ]
    assert (rules[0].params, rules[0].kind, rules[1].sku_id, rules[1].priority) == ({"count": 3}, "flash", sku.pk, 2)
