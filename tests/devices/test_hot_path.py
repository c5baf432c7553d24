"""What device cues cost the rest of the node (docs/devices.md, "Cue rules" and "Dispatch"):
an event type no shop has a rule for is handed to no cue handler at all (a buy's
``stock.changed`` then enqueues nothing), ``redeliver_pending`` does not hand over events
whose cues could only fail, a cue counts its timeout from its event, and without a Celery
broker no request waits on the MQTT broker."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from apps.devices.models import Cue, CueRule
from apps.devices.selectors import rule_types
from apps.devices.services import cue_rule_create, cues_for_event
from apps.devices.transport import close_driver, topic
from creatorcommerce.mqtt import new_client, parse_mqtt_url
from creatorcommerce.spine.events import emit
from creatorcommerce.spine.models import HandlerRun, OutboxEvent
from creatorcommerce.spine.registry import handlers_for, subscribed_types
from creatorcommerce.spine.tasks import apply_handler, redeliver_pending

from .conftest import wait_for

HANDLER = "apps.devices.handlers.cues_on_event"


@pytest.fixture(autouse=True)
def _fresh_rule_types():
    rule_types.forget()
    yield
    rule_types.forget()


@pytest.mark.django_db
def test_an_event_type_without_rules_goes_to_no_cue_handler(shop, led):
    assert HANDLER not in handlers_for("stock.changed")
    assert HANDLER not in subscribed_types().get("stock.changed", [])
    cue_rule_create(shop=shop, event_type="stock.changed", device=led, kind="urgency", available_at_most=5)
    assert HANDLER in handlers_for("stock.changed")  # saved in this process: seen at once
    assert HANDLER not in handlers_for("deal.opened")


@pytest.mark.django_db
def test_a_rule_saved_by_another_process_is_seen_within_the_ttl(settings, shop, led):
    settings.DEVICES_RULE_TYPES_TTL_SECONDS = 0.3
    assert HANDLER not in handlers_for("order.placed")
    # Another process's write: this process's cache does not hear of it.
    CueRule.objects.create(shop=shop, event_type="order.placed", device=led, kind="tap")
    started = time.monotonic()
    assert HANDLER not in handlers_for("order.placed")
    wait_for(lambda: HANDLER in handlers_for("order.placed"), timeout=5)
    assert time.monotonic() - started >= 0.2


@pytest.mark.django_db(transaction=True)
def test_a_buy_hands_stock_changed_over_only_once_a_rule_wants_it(shop, led, sku, monkeypatch):
    from creatorcommerce.spine import events
    from tests.factories import make_buyer
    from tests.orders.test_services import buy

    handed = []
    monkeypatch.setattr(events, "enqueue_handlers", lambda event: handed.append(event.type))
    buyer = make_buyer()
    assert buy(buyer, sku, key="no-rule-buy-1").status == 201
    assert handed == ["order.placed"]
    cue_rule_create(shop=shop, event_type="stock.changed", device=led, kind="urgency", available_at_most=5)
    handed.clear()
    assert buy(buyer, sku, key="rule-buy-22").status == 201
    assert handed == ["stock.changed", "order.placed"]


def _deal_opened(stream, age_seconds: float) -> OutboxEvent:
    """A ``deal.opened`` of ``stream`` recorded ``age_seconds`` ago (only what the cue
    handler reads of it: the event's shape is the streams app's, docs/events.md)."""
    with override_settings(SPINE_CHECK_EVENTS=False), transaction.atomic():
        event = emit("deal.opened", {"stream": stream.pk, "sku_id": 0})
    OutboxEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(seconds=age_seconds))
    return OutboxEvent.objects.get(pk=event.pk)


@pytest.mark.django_db
def test_redelivery_skips_unwanted_types_and_events_older_than_any_cue_could_live(shop, led, live_stream):
    def deal_event(age_seconds):
        return _deal_opened(live_stream, age_seconds)

    unwanted = deal_event(60)
    redeliver_pending(min_age_seconds=30)
    assert not HandlerRun.objects.filter(handler=HANDLER).exists()  # no rule for deal.opened

    cue_rule_create(shop=shop, event_type="deal.opened", device=led, kind="pulse", stream=live_stream)
    too_old = deal_event(301)
    recent = deal_event(45)
    redeliver_pending(min_age_seconds=30)  # eager: the handler runs here
    handled = set(HandlerRun.objects.filter(handler=HANDLER).values_list("event_id", flat=True))
    assert recent.pk in handled and unwanted.pk in handled
    assert too_old.pk not in handled


@pytest.mark.django_db
def test_a_cue_counts_its_timeout_from_its_event(shop, led, live_stream, settings):
    settings.MQTT_URL = ""
    settings.DEVICES_SIMULATE_IN_PROCESS = True
    cue_rule_create(shop=shop, event_type="deal.opened", device=led, kind="pulse", stream=live_stream, timeout_s=10)
    late = _deal_opened(live_stream, 20)
    apply_handler(late.pk, HANDLER)
    cue = Cue.objects.get(event_id=late.pk)
    assert cue.issued_at == late.created_at
    assert cue.expires_at < timezone.now()
    # Its send (on commit) finds it expired: failed, never published.
    from apps.devices.dispatch import dispatch

    assert dispatch(cue.pk) == "expired"
    cue.refresh_from_db()
    assert (cue.status, cue.sent_at) == (Cue.Status.FAILED, None)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_without_a_celery_broker_an_unreachable_mqtt_broker_holds_no_request(settings, shop, led, live_stream):
    """Eager tasks (no Celery broker) with ``MQTT_URL``: the commit that makes a cue returns
    at once; the process's sending thread retries until the cue expires, then fails it."""
    settings.MQTT_URL = f"mqtt://127.0.0.1:{_closed_port()}"
    settings.DEVICES_SIMULATE_IN_PROCESS = False
    settings.DEVICES_PUBACK_TIMEOUT_SECONDS = 0.5
    cue_rule_create(shop=shop, event_type="deal.opened", device=led, kind="pulse", stream=live_stream, timeout_s=1)
    try:
        started = time.monotonic()
        with transaction.atomic():
            (cue_id,) = cues_for_event(
                event_id=None, event_type="deal.opened", payload={"stream": live_stream.pk, "shop": shop.pk, "sku": 1}
            )
        assert time.monotonic() - started < 0.3  # the commit did not wait for the broker
        wait_for(lambda: Cue.objects.get(pk=cue_id).status == Cue.Status.FAILED, timeout=10)
        cue = Cue.objects.get(pk=cue_id)
        assert cue.sent_at is None and "expired" in cue.detail
    finally:
        close_driver()


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_without_a_celery_broker_cues_still_reach_the_mqtt_broker(settings, mqtt_url, shop, led, live_stream):
    settings.MQTT_URL = mqtt_url
    settings.NODE_ID = node = f"node-test-{time.monotonic_ns()}"
    settings.DEVICES_SIMULATE_IN_PROCESS = False
    target = parse_mqtt_url(mqtt_url)
    received, subscribed = [], threading.Event()
    client = new_client(target)
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_connect = lambda c, *args: c.subscribe(topic(led.mqtt_id, "cue", node=node), qos=1)
    client.on_message = lambda c, userdata, message: received.append(message)
    client.connect(target.host, target.port)
    client.loop_start()
    try:
        assert subscribed.wait(5)
        cue_rule_create(shop=shop, event_type="deal.opened", device=led, kind="pulse", stream=live_stream)
        with transaction.atomic():
            (cue_id,) = cues_for_event(
                event_id=None, event_type="deal.opened", payload={"stream": live_stream.pk, "shop": shop.pk, "sku": 1}
            )
        wait_for(lambda: received, timeout=5)
        assert received[0].retain is False and received[0].qos == 1
        wait_for(lambda: Cue.objects.get(pk=cue_id).status == Cue.Status.SENT, timeout=5)
    finally:
        client.disconnect()
        client.loop_stop()
        close_driver()


# -- the review's cases: one publisher per cue, one task per cue, bad device input ---------------


@pytest.mark.django_db
def test_a_sent_cue_is_published_again_by_one_task_only_and_never_late(settings, led):
    from apps.devices.dispatch import dispatch
    from apps.devices.services import cue_claim_republish, cue_fire

    settings.MQTT_URL = ""
    settings.DEVICES_SIMULATE_IN_PROCESS = False
    settings.DEVICES_PUBACK_TIMEOUT_SECONDS = 2.0
    cue = cue_fire(device=led, kind="pulse")
    assert dispatch(cue.pk) == "sent"
    Cue.objects.filter(pk=cue.pk).update(puback_at=None)  # as if the broker never confirmed it
    assert dispatch(cue.pk) == "skipped"  # within the first attempt's PUBACK wait
    Cue.objects.filter(pk=cue.pk).update(sent_at=timezone.now() - timedelta(seconds=3))
    assert cue_claim_republish(cue_id=cue.pk)  # one task may now...
    assert not cue_claim_republish(cue_id=cue.pk)  # ...and no second one
    Cue.objects.filter(pk=cue.pk).update(
        sent_at=timezone.now() - timedelta(seconds=3), expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert dispatch(cue.pk) == "expired"  # never published late


@pytest.mark.django_db
def test_the_sweep_enqueues_again_only_cues_whose_hand_over_failed(settings, led):
    from apps.devices.services import cue_fire, cues_sweep

    settings.MQTT_URL = ""  # the log driver; tasks run eagerly, where the sweep enqueues them
    settings.DEVICES_SIMULATE_IN_PROCESS = False
    # cue_fire's hand-over runs on commit, which this test's transaction never reaches: both
    # cues stay queued, as cues whose tasks wait in a busy queue would.
    waiting = cue_fire(device=led, kind="pulse")
    lost = cue_fire(device=led, kind="flash")
    Cue.objects.filter(pk__in=[waiting.pk, lost.pk]).update(issued_at=timezone.now() - timedelta(seconds=6))
    Cue.objects.filter(pk=lost.pk).update(enqueue_failed=True)  # as enqueue() marks a failed hand-over
    assert cues_sweep()["requeued"] == 1
    statuses = dict(Cue.objects.values_list("pk", "status"))
    assert (statuses[lost.pk], statuses[waiting.pk]) == (Cue.Status.SENT, Cue.Status.QUEUED)
    assert cues_sweep()["requeued"] == 0


@pytest.mark.django_db
def test_an_ack_after_expiry_or_with_control_characters(settings, led):
    from apps.devices.dispatch import dispatch
    from apps.devices.services import cue_fire, cue_record_ack

    settings.MQTT_URL = ""
    settings.DEVICES_SIMULATE_IN_PROCESS = False
    late = cue_fire(device=led, kind="pulse")
    dispatch(late.pk)
    Cue.objects.filter(pk=late.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert cue_record_ack(mqtt_id=led.mqtt_id, message={"id": late.pk, "status": "done"}) == "ignored"
    odd = cue_fire(device=led, kind="pulse")
    dispatch(odd.pk)
    message = {"id": odd.pk, "status": "failed", "detail": "bulb\x00 out\n" + "x" * 600}
    assert cue_record_ack(mqtt_id=led.mqtt_id, message=message) == "failed"
    detail = Cue.objects.get(pk=odd.pk).detail
    assert detail.startswith("bulb out") and "\x00" not in detail and len(detail) <= 500


@pytest.mark.django_db
def test_mqtt_ids_are_slugs_and_never_the_servers(settings, room):
    from apps.devices.exceptions import InvalidCueRule
    from apps.devices.services import device_create

    settings.MQTT_URL = "mqtt://cc-node:secret@127.0.0.1:1884"
    for bad, code in [
        ("Dev A", "invalid_mqtt_id"),
        ("a/b", "invalid_mqtt_id"),
        ("", "invalid_mqtt_id"),
        ("cc-node", "reserved_mqtt_id"),
        ("cc-anything", "reserved_mqtt_id"),
    ]:
        with pytest.raises(InvalidCueRule) as caught:
            device_create(room=room, name="X", kind="light", mqtt_id=bad)
        assert caught.value.code == code, bad
    device, _ = device_create(room=room, name="Fine", kind="light", mqtt_id="stage-light_2")
    assert device.pk


def test_the_servers_password_never_shows():
    from creatorcommerce.mqtt import parse_mqtt_url, shown_url

    assert shown_url("mqtt://cc-server:s3cret@broker:1884") == "mqtt://cc-server:***@broker:1884"
    with pytest.raises(ValueError) as caught:
        parse_mqtt_url("http://cc-server:s3cret@broker")
    assert "s3cret" not in str(caught.value)


def test_the_listener_ignores_oversized_payloads(settings, caplog):
    from types import SimpleNamespace

    from apps.devices.listener import MAX_PAYLOAD, AckListener

    settings.MQTT_URL = "mqtt://127.0.0.1:1"
    listener = AckListener(settings.MQTT_URL)  # never connected: only its message handling runs
    huge = SimpleNamespace(topic=topic("dev-x", "ack"), payload=b"{" + b" " * MAX_PAYLOAD + b"}")
    with caplog.at_level("WARNING", logger="apps.devices.listener"):
        listener._on_message(None, None, huge)  # no database here: it must not get that far
    assert [r.getMessage() for r in caplog.records] == [f"ack from dev-x is {MAX_PAYLOAD + 2} bytes: ignored"]
