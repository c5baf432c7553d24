"""Cues over the real Mosquitto at MQTT_URL (docs/devices.md): the contract's topic and
payload, QoS 1 and never retained; the simulator's acks recorded by the listener; a silent
device's cue failed after its timeout; duplicate acks and duplicate spine deliveries change
nothing; an expired cue never leaves; device status from the retained status and last will.

Each test uses its own ``NODE_ID``, so other runs on the same broker never cross it. Where a
test shows that something did *not* arrive, it first waits for a later message that must
arrive after it (one publisher's messages reach a subscriber in order)."""

from __future__ import annotations

import json
import secrets
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.devices.listener import AckListener
from apps.devices.models import Cue, Device
from apps.devices.services import cue_fire, cue_rule_create
from apps.devices.simulator import SimulatedDevice
from apps.devices.tasks import send_cue
from apps.devices.transport import close_driver, topic
from apps.streams.services import deal_open_now
from creatorcommerce.fields import iso_utc
from creatorcommerce.mqtt import new_client, parse_mqtt_url
from creatorcommerce.spine.models import OutboxEvent
from creatorcommerce.spine.tasks import apply_handler
from tests.helpers import captured_events

from .broker import Broker, need_mosquitto
from .conftest import wait_for

pytestmark = [pytest.mark.mqtt, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def node(settings, mqtt_url):
    settings.MQTT_URL = mqtt_url
    settings.NODE_ID = f"node-test-{secrets.token_hex(4)}"
    settings.DEVICES_SIMULATE_IN_PROCESS = False
    yield settings.NODE_ID
    close_driver()


class Observer:
    """A bare MQTT client on every cue topic of the node: what a device would receive."""

    def __init__(self, url: str, node: str):
        target = parse_mqtt_url(url)
        self.messages: list = []
        self.client = new_client(target)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_connect = lambda client, *args: client.subscribe(topic("+", "cue", node=node), qos=1)
        self.client.on_message = lambda client, userdata, message: self.messages.append(message)
        self.client.connect(target.host, target.port)
        self.client.loop_start()
        assert subscribed.wait(5), "observer not subscribed"

    def ids(self) -> list:
        return [json.loads(message.payload)["id"] for message in self.messages]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def observer(node, mqtt_url):
    obs = Observer(mqtt_url, node)
    yield obs
    obs.close()


@pytest.fixture
def listener(node, mqtt_url):
    ack_listener = AckListener(mqtt_url, sweep_every=0.05)
    thread = threading.Thread(target=ack_listener.run, daemon=True)
    thread.start()
    assert ack_listener.subscribed.wait(5), "listener not subscribed"
    yield ack_listener
    ack_listener.stop()
    thread.join(5)


@pytest.fixture
def simulate(node, mqtt_url):
    sims = []

    def start(device: Device, **options) -> SimulatedDevice:
        sim = SimulatedDevice(mqtt_url, device.mqtt_id, node=node, out=lambda line: None, **options)
        sim.start()
        assert sim.ready.wait(5), "simulated device not subscribed"
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        sim.stop()


def _cue(status_of: Cue) -> Cue:
    return Cue.objects.get(pk=status_of.pk)


def test_a_deal_opening_sends_the_contract_cue_and_the_simulators_ack_is_recorded(
    node, observer, listener, simulate, pulse_rule, make_deal, led
):
    simulate(led)
    wait_for(lambda: Device.objects.get(pk=led.pk).online)  # its retained "online"
    deal_open_now(deal=make_deal())
    cue = wait_for(lambda: Cue.objects.filter(device=led, status=Cue.Status.ACKED).first())
    [message] = wait_for(lambda: observer.messages)
    assert message.topic == f"cc/{node}/devices/{led.mqtt_id}/cue"
    assert (message.qos, message.retain) == (1, False)
    body = json.loads(message.payload)
    event = OutboxEvent.objects.get(type="deal.opened")
    assert body == {
        "id": cue.pk,
        "kind": "pulse",
        "params": {"color": "#ff0000"},
        "event": "deal.opened",
        "issued_at": cue.issued_at.isoformat().replace("+00:00", "Z"),
        "expires_at": cue.expires_at.isoformat().replace("+00:00", "Z"),
    }
    assert cue.event_id == event.pk and cue.latency_ms is not None and cue.acked_at >= cue.sent_at


def test_a_silent_device_fails_the_cue_after_its_timeout(
    node, observer, listener, simulate, shop, led, live_stream, make_deal
):
    cue_rule_create(shop=shop, event_type="deal.opened", device=led, kind="pulse", stream=live_stream, timeout_s=1)
    sim = simulate(led, silent=True)
    deal_open_now(deal=make_deal())
    failed = wait_for(lambda: Cue.objects.filter(device=led, status=Cue.Status.FAILED).first())
    assert failed.detail == "no ack within 1 s"
    assert failed.expires_at - failed.issued_at == timedelta(seconds=1)
    assert [c["id"] for c in sim.received] == [failed.pk]  # it was delivered, just never acked


def test_a_failing_device_and_a_duplicate_ack(node, observer, listener, simulate, led, mqtt_url):
    simulate(led, fail=True)
    cue = cue_fire(device=led, kind="tap", params={"pattern": "double"})
    failed = wait_for(lambda: Cue.objects.filter(pk=cue.pk, status=Cue.Status.FAILED).first())
    assert failed.detail == "simulated failure"
    # QoS 1 may deliver an ack twice; a late "done" for the same cue changes nothing either.
    target = parse_mqtt_url(mqtt_url)
    client = new_client(target)
    client.connect(target.host, target.port)
    client.loop_start()
    try:
        ack_topic = topic(led.mqtt_id, "ack", node=node)
        client.publish(
            ack_topic, json.dumps({"id": cue.pk, "status": "failed", "detail": "again"}), qos=1
        ).wait_for_publish(5)
        client.publish(ack_topic, json.dumps({"id": cue.pk, "status": "done"}), qos=1).wait_for_publish(5)
        # Then something the listener must record, after the duplicates.
        client.publish(topic(led.mqtt_id, "status", node=node), "offline", qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()
    wait_for(lambda: not Device.objects.get(pk=led.pk).online)
    after = _cue(cue)
    assert (after.status, after.detail, after.acked_at) == (Cue.Status.FAILED, "simulated failure", failed.acked_at)


def test_an_expired_cue_is_never_published_and_nothing_is_retained(node, observer, listener, simulate, led, mqtt_url):
    stale = cue_fire(device=led, kind="flash", now=timezone.now() - timedelta(seconds=30))
    fresh = cue_fire(device=led, kind="pulse")
    wait_for(lambda: fresh.pk in observer.ids())
    assert stale.pk not in observer.ids()
    stale.refresh_from_db()
    assert (stale.status, stale.sent_at) == (Cue.Status.FAILED, None)
    # A device that connects now gets nothing retained on its cue topic: the next cue is the
    # first message it sees.
    sim = simulate(led)
    late = cue_fire(device=led, kind="pulse")
    wait_for(lambda: sim.received)
    assert [c["id"] for c in sim.received] == [late.pk]


def test_a_duplicate_spine_delivery_publishes_one_cue(node, observer, listener, simulate, pulse_rule, make_deal, led):
    simulate(led)
    deal_open_now(deal=make_deal())
    cue = wait_for(lambda: Cue.objects.filter(device=led, status=Cue.Status.ACKED).first())
    event = OutboxEvent.objects.get(type="deal.opened")
    assert apply_handler(event.pk, "apps.devices.handlers.cues_on_event") == "duplicate"
    assert send_cue.apply(args=(cue.pk,)).result == "skipped"  # a redelivered task
    sentinel = cue_fire(device=led, kind="flash")
    wait_for(lambda: sentinel.pk in observer.ids())
    assert observer.ids() == [cue.pk, sentinel.pk]
    assert Cue.objects.filter(event_id=event.pk).count() == 1


def test_the_last_will_marks_a_device_offline(node, listener, simulate, led):
    sim = simulate(led)
    wait_for(lambda: Device.objects.get(pk=led.pk).online)
    seen = Device.objects.get(pk=led.pk).last_seen
    # The connection drops without DISCONNECT (and without paho reconnecting): the broker
    # publishes the device's last will, "offline", retained.
    sim.client.loop_stop()
    sim.client.socket().close()
    wait_for(lambda: not Device.objects.get(pk=led.pk).online, 10)
    assert Device.objects.get(pk=led.pk).last_seen == seen


@pytest.fixture
def own_broker(tmp_path, settings, node):
    need_mosquitto()
    broker = Broker(tmp_path)
    broker.start()
    settings.MQTT_URL = broker.url
    yield broker
    close_driver()
    broker.remove()


def test_after_a_broker_restart_cues_are_sent_once_or_failed_if_they_expired(
    own_broker, node, shop, led, live_stream, make_deal, settings
):
    settings.MQTT_RECONNECT_MAX_SECONDS = 1.0
    listener = AckListener(own_broker.url, sweep_every=0.05)
    thread = threading.Thread(target=listener.run, daemon=True)
    thread.start()
    sim = SimulatedDevice(own_broker.url, led.mqtt_id, node=node, out=lambda line: None)
    sim.start()
    try:
        assert listener.subscribed.wait(5) and sim.ready.wait(5)
        before = cue_fire(device=led, kind="pulse")  # connects this process's publisher
        wait_for(lambda: Cue.objects.filter(pk=before.pk, status=Cue.Status.ACKED).exists())
        listener.subscribed.clear()
        sim.ready.clear()

        own_broker.stop()
        # Issued while the broker is down: one that expires before it is back, one that does not.
        short = cue_rule_create(shop=shop, event_type="deal.opened", device=led, kind="flash", timeout_s=1)
        cue_rule_create(shop=shop, event_type="deal.opened", device=led, kind="pulse", stream=live_stream)
        restart = threading.Timer(1.5, own_broker.start)
        restart.start()
        deal_open_now(deal=make_deal())  # no Celery broker here: the sending thread retries until the broker is back
        restart.join()
        wait_for(lambda: Cue.objects.get(rule=short).status == Cue.Status.FAILED)
        expired = Cue.objects.get(rule=short)
        assert expired.sent_at is None
        assert listener.subscribed.wait(10) and sim.ready.wait(10)  # both reconnected and re-subscribed
        during = Cue.objects.exclude(rule=short).get(event_type="deal.opened")
        wait_for(lambda: Cue.objects.filter(pk=during.pk, status=Cue.Status.ACKED).exists())
        after = cue_fire(device=led, kind="tap")
        wait_for(lambda: Cue.objects.filter(pk=after.pk, status=Cue.Status.ACKED).exists())
        # Each sent cue reached the device once (the raw deliveries: a repeat or a late
        # publish would show here); the expired one never; nothing was replayed.
        assert sim.deliveries == [before.pk, during.pk, after.pk]
    finally:
        sim.stop()
        listener.stop()
        thread.join(5)


@pytest.mark.redis
def test_a_plain_worker_consumes_the_cues_queue(settings, node, observer, pulse_rule, make_deal, led):
    """Through the real Celery broker: the spine's handler and then ``send_cue`` (routed to
    ``cues``) both run on a worker started without ``-Q``, as the README starts it."""
    from celery.contrib.testing.worker import start_worker

    from creatorcommerce.celery import app

    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert app.amqp.router.route({}, "apps.devices.tasks.send_cue")["queue"].name == "cues"
    app.conf.task_always_eager = False
    app.control.purge()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        deal_open_now(deal=make_deal())
        cue = wait_for(lambda: Cue.objects.filter(device=led, status=Cue.Status.SENT, puback_at__isnull=False).first())
        wait_for(lambda: cue.pk in observer.ids())


@pytest.mark.redis
def test_in_a_worker_the_handler_publishes_its_cues_itself_from_the_cues_queue(
    settings, node, observer, pulse_rule, make_deal, led
):
    """docs/devices.md, "Dispatch": the spine handler's runs go to the ``cues`` queue (a
    worker consuming only ``cues`` gets them), and a worker connected to the MQTT broker
    makes the cue ``sent`` in the handler's transaction and publishes it right after its
    commit: no ``send_cue`` task, no second read of the cue."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_prerun

    from apps.devices.transport import driver
    from creatorcommerce.celery import app

    driver().ready()  # this process's publisher, connected (the worker's thread shares it)
    ran = []

    def record(sender=None, task=None, **kwargs):
        ran.append((task.name, task.request.delivery_info.get("routing_key")))

    task_prerun.connect(record, weak=False)
    app.conf.task_always_eager = False
    app.control.purge()
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, queues=["cues"]):
            with captured_events() as events:
                deal_open_now(deal=make_deal())
                cue = wait_for(lambda: Cue.objects.filter(device=led, puback_at__isnull=False).first())
            wait_for(lambda: cue.pk in observer.ids())
    finally:
        task_prerun.disconnect(record)
        app.control.purge()
        # ``queues=`` selected them on the app itself: later workers consume every queue again.
        app.amqp.queues.select(list(app.amqp.queues))
    assert ("creatorcommerce.spine.tasks.run_handler", "cues") in ran
    assert not [name for name, _queue in ran if name == "apps.devices.tasks.send_cue"]
    assert cue.status == Cue.Status.SENT and cue.puback_at >= cue.sent_at
    [message] = [m for m in observer.messages if json.loads(m.payload)["id"] == cue.pk]
    assert message.topic == f"cc/{node}/devices/{led.mqtt_id}/cue"
    assert json.loads(message.payload) == {
        "id": cue.pk,
        "kind": "pulse",
        "params": {"color": "#ff0000"},
        "event": "deal.opened",
        "issued_at": iso_utc(cue.issued_at),
        "expires_at": iso_utc(cue.expires_at),
    }
    sent = [payload for event_type, payload, _groups in events if event_type == "cue.sent"]
    assert [(p["cue"], p["sent_at"]) for p in sent] == [(cue.pk, iso_utc(cue.sent_at))]


@pytest.mark.redis
def test_a_cue_workers_processes_connect_to_the_broker_at_start(tmp_path, redis_url):
    """docs/devices.md, "Dispatch": each process of a real prefork worker consuming ``cues``
    opens its MQTT connection when it starts, not when its first cue comes (which then
    waited 115-140 ms for it). The test's own broker's log shows who connected."""
    import os
    import re
    import signal
    import subprocess
    import sys
    from pathlib import Path

    need_mosquitto()
    broker = Broker(tmp_path)
    broker.start()
    node_id = f"node-test-{secrets.token_hex(4)}"
    env = {
        **os.environ,
        "MQTT_URL": broker.url,
        "NODE_ID": node_id,
        "CELERY_BROKER_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "creatorcommerce.settings",
    }
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "creatorcommerce",
                "worker",
                "-Q",
                "cues",
                "-c",
                "2",
                "-P",
                "prefork",
                "-n",
                f"{node_id}@%h",
                "-l",
                "warning",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=Path(__file__).resolve().parents[2],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pattern = re.compile(rf" as cc-{re.escape(node_id)}-cues-(\d+)-")
    try:

        def publishers() -> set[int]:
            assert worker.poll() is None, f"the worker exited: {log.read_text()[-3000:]}"
            return {int(pid) for pid in pattern.findall(broker.log.read_text())}

        pids = wait_for(lambda: (found := publishers()) and len(found) == 2 and found, 60, message="two publishers")
        assert worker.pid not in pids  # the pool's two children, not the worker's parent
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        broker.remove()
