"""Broker security (docs/devices.md, "Broker security"): the shipped deploy/mosquitto config
with the password and ACL files ``manage.py mqtt_auth`` writes. Each device logs in with its
own password and reads only its own cue topic, writes only its own ack and status; only the
server's account (MQTT_URL's) publishes cues; a disabled or removed device is refused once
the files are written again and the broker reloaded (SIGHUP).

Each broker test starts the shipped config on a free port. Where a test shows that something
did *not* arrive, it waits for a later message that must arrive after it: the broker fans a
QoS 1 publish out to its subscribers before it confirms it (PUBACK), and one publisher's
messages reach a subscriber in order."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import threading

import pytest
from django.core.management import CommandError, call_command

from apps.devices import mosquitto
from apps.devices.exceptions import InvalidCue
from apps.devices.listener import AckListener
from apps.devices.models import Cue, Device
from apps.devices.services import (
    cue_fire,
    device_check_password,
    device_create,
    device_reset_password,
    device_set_active,
)
from apps.devices.simulator import SimulatedDevice, load_credentials
from apps.devices.transport import close_driver, topic
from apps.streams.services import deal_open_now
from creatorcommerce.mqtt import new_client, parse_mqtt_url
from creatorcommerce.spine.models import OutboxEvent

from .broker import Broker, need_mosquitto
from .conftest import wait_for

SERVER = "cc-server"


# -- the files, without a broker ------------------------------------------------------------


def test_our_hash_is_mosquitto_passwds_format(tmp_path):
    hashed = mosquitto.password_hash("s3cret", salt=b"\x01" * 12)
    _, kind, iterations, salt, key = hashed.split("$")
    assert (kind, iterations, salt) == ("7", "101", "AQEBAQEBAQEBAQEB")
    assert len(key) == 88  # 64 bytes
    assert mosquitto.password_matches("s3cret", hashed) and not mosquitto.password_matches("other", hashed)
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("needs mosquitto_passwd to compare with its output")
    path = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "alice", "s3cret"], check=True)
    theirs = path.read_text().strip().split(":", 1)[1]
    assert theirs.startswith("$7$101$")
    assert mosquitto.password_matches("s3cret", theirs) and not mosquitto.password_matches("other", theirs)


@pytest.mark.django_db
def test_a_devices_password_is_kept_in_both_hashes_and_a_reset_replaces_both(led):
    device, password = device_create(room=led.room, name="Light", kind="light", mqtt_id="light-1")
    stored = Device.objects.get(pk=device.pk)
    assert password not in (stored.password_hash, stored.mqtt_password_hash)
    assert device_check_password(stored, password) and mosquitto.password_matches(password, stored.mqtt_password_hash)
    new = device_reset_password(device=stored)
    stored = Device.objects.get(pk=device.pk)
    assert device_check_password(stored, new) and mosquitto.password_matches(new, stored.mqtt_password_hash)
    assert not mosquitto.password_matches(password, stored.mqtt_password_hash)


@pytest.mark.django_db
def test_mqtt_auth_writes_the_server_and_the_active_devices(settings, tmp_path, room):
    settings.NODE_ID = "node-x"
    settings.MQTT_URL = "mqtt://cc-server:p%40ss@127.0.0.1:1883"
    a, _ = device_create(room=room, name="A", kind="light", mqtt_id="dev-a")
    b, _ = device_create(room=room, name="B", kind="light", mqtt_id="dev-b")
    off, _ = device_create(room=room, name="Off", kind="light", mqtt_id="dev-off")
    device_set_active(device=off, active=False)
    Device.objects.filter(pk=b.pk).update(mqtt_password_hash="")  # set before there was one
    err = []
    call_command("mqtt_auth", "--out", str(tmp_path), stderr=type("W", (), {"write": lambda s, x: err.append(x)})())
    users = dict(line.split(":", 1) for line in (tmp_path / "passwd").read_text().splitlines())
    assert set(users) == {"cc-server", "dev-a"}
    assert mosquitto.password_matches("p@ss", users["cc-server"])  # MQTT_URL's password, decoded
    assert users["dev-a"] == Device.objects.get(pk=a.pk).mqtt_password_hash
    assert "dev-b" in "".join(err)  # said it was left out
    acl = [line for line in (tmp_path / "acl").read_text().splitlines() if line and not line.startswith("#")]
    assert acl == [
        "user cc-server",
        "topic write cc/node-x/devices/+/cue",
        "topic read cc/node-x/devices/+/ack",
        "topic read cc/node-x/devices/+/status",
        "user dev-a",
        "topic read cc/node-x/devices/dev-a/cue",
        "topic write cc/node-x/devices/dev-a/ack",
        "topic write cc/node-x/devices/dev-a/status",
    ]
    assert (tmp_path / "passwd").stat().st_mode & 0o077 == 0  # no group or world access by default


@pytest.mark.django_db
def test_mqtt_auth_refuses_what_it_cannot_write(settings, tmp_path, room):
    settings.MQTT_URL = "mqtt://127.0.0.1:1883"
    with pytest.raises(CommandError, match="no user:password"):
        call_command("mqtt_auth", "--out", str(tmp_path))
    device_create(room=room, name="A", kind="light", mqtt_id="dev-a")
    settings.MQTT_URL = "mqtt://dev-a:pw@127.0.0.1:1883"  # the server renamed after the device came
    with pytest.raises(CommandError, match="server's username"):
        call_command("mqtt_auth", "--out", str(tmp_path))
    settings.MQTT_URL = "mqtt://cc-server:pw@127.0.0.1:1883"
    with pytest.raises(CommandError, match="choose them with --room or --device"):
        call_command("mqtt_auth", "--out", str(tmp_path), "--reset-credentials", str(tmp_path / "c.json"))
    with pytest.raises(CommandError, match="No active device to reset: nope"):
        call_command(
            "mqtt_auth", "--out", str(tmp_path), "--reset-credentials", str(tmp_path / "c.json"), "--device", "nope"
        )
    assert not (tmp_path / "passwd").exists()


@pytest.mark.django_db
def test_the_simulator_needs_a_password_for_every_device_it_plays(settings, tmp_path, led):
    settings.MQTT_URL = "mqtt://127.0.0.1:1883"
    credentials = tmp_path / "c.json"
    credentials.write_text(json.dumps({"someone-else": "pw"}))
    with pytest.raises(CommandError, match=f"no password for {led.mqtt_id}"):
        call_command("device_simulator", "--room", str(led.room_id), "--credentials", str(credentials))
    credentials.write_text("[1, 2]")
    with pytest.raises(CommandError, match="must be a JSON object"):
        call_command("device_simulator", "--room", str(led.room_id), "--credentials", str(credentials))


@pytest.mark.django_db
def test_a_disabled_device_gets_no_cues(led, pulse_rule, make_deal, settings, django_capture_on_commit_callbacks):
    settings.MQTT_URL = ""  # the log driver
    device_set_active(device=led, active=False)
    with pytest.raises(InvalidCue) as refused:
        cue_fire(device=led, kind="pulse")
    assert refused.value.code == "device_disabled"
    with django_capture_on_commit_callbacks(execute=True):
        deal_open_now(deal=make_deal())  # its rule matches, but makes no cue
    assert OutboxEvent.objects.filter(type="deal.opened").exists()
    assert not Cue.objects.filter(device=led).exists()
    device_set_active(device=led, active=True)
    assert cue_fire(device=led, kind="pulse").device_id == led.pk


def test_the_server_account_in_mqtt_url_is_percent_decoded():
    target = parse_mqtt_url("mqtt://cc%2Dserver:p%40ss%3Aw@broker:1884")
    assert (target.username, target.password, target.host, target.port) == ("cc-server", "p@ss:w", "broker", 1884)
    assert parse_mqtt_url("mqtt://broker").username is None


# -- against the shipped config --------------------------------------------------------------


class Account:
    """A bare MQTT client logged in as one account (or none); what it receives."""

    def __init__(
        self, broker: Broker, username: str | None = None, password: str | None = None, *, subscribe=(), client_id=""
    ):
        target = parse_mqtt_url(broker.url_as(username, password) if username else broker.url)
        self.client = new_client(target, client_id=client_id)
        self.messages: list = []
        self.connack = None
        self.connected, self.subscribed, self.dropped = threading.Event(), threading.Event(), threading.Event()

        def on_connect(client, userdata, flags, reason_code, properties):
            self.connack = reason_code
            self.connected.set()
            if reason_code.is_failure:
                client.disconnect()  # no retrying
            elif subscribe:
                client.subscribe([(t, 1) for t in subscribe])

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_disconnect = lambda *args: self.dropped.set()
        self.client.on_message = lambda client, userdata, message: self.messages.append(message)
        self.client.connect(target.host, target.port, keepalive=10)
        self.client.loop_start()
        assert self.connected.wait(5), "no CONNACK"
        if subscribe and self.accepted:
            assert self.subscribed.wait(5), "not subscribed"

    @property
    def accepted(self) -> bool:
        return not self.connack.is_failure

    def publish(self, topic_: str, payload, *, retain: bool = False) -> None:
        self.client.publish(topic_, payload, qos=1, retain=retain).wait_for_publish(5)

    def received(self) -> list[tuple[str, bytes]]:
        return [(m.topic, m.payload) for m in list(self.messages)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def login(broker: Broker, username=None, password=None) -> bool:
    account = Account(broker, username, password)
    try:
        return account.accepted
    finally:
        account.close()


@pytest.fixture
def acl_node(settings):
    settings.NODE_ID = f"node-acl-{secrets.token_hex(4)}"
    settings.DEVICES_SIMULATE_IN_PROCESS = False
    yield settings.NODE_ID
    close_driver()


@pytest.fixture
def secured(tmp_path, settings, acl_node):
    """The shipped config, not started yet; ``authorize()`` writes the files with
    ``mqtt_auth`` (as the operator would) and starts the broker, or reloads it."""
    need_mosquitto()
    broker = Broker(tmp_path, secured=True)
    broker.server_password = secrets.token_urlsafe(16)
    settings.MQTT_URL = broker.url_as(SERVER, broker.server_password)
    settings.MQTT_RECONNECT_MAX_SECONDS = 1.0

    def authorize(*args: str) -> None:
        group = ("--group", broker.group) if broker.group else ()
        call_command("mqtt_auth", "--out", str(broker.auth), *group, *args)
        if broker.proc is None:
            broker.start()
        else:
            broker.reload()

    broker.authorize = authorize
    yield broker
    close_driver()
    broker.remove()


@pytest.fixture
def accounts(secured):
    opened = []

    def open_(*args, **kwargs) -> Account:
        account = Account(secured, *args, **kwargs)
        opened.append(account)
        return account

    yield open_
    for account in opened:
        account.close()


@pytest.fixture
def pair(room):
    """Two devices and their passwords."""
    a, a_pw = device_create(room=room, name="A", kind="led_strip", mqtt_id=f"dev-a-{secrets.token_hex(3)}")
    b, b_pw = device_create(room=room, name="B", kind="haptic", mqtt_id=f"dev-b-{secrets.token_hex(3)}")
    return (a, a_pw), (b, b_pw)


broker_db = pytest.mark.django_db(transaction=True)


@broker_db
def test_only_known_accounts_with_their_passwords_get_in(secured, pair):
    (a, a_pw), (b, b_pw) = pair
    secured.authorize()
    assert login(secured, a.mqtt_id, a_pw)
    assert login(secured, b.mqtt_id, b_pw)
    assert login(secured, SERVER, secured.server_password)
    assert not login(secured, a.mqtt_id, b_pw)  # another device's password
    assert not login(secured, a.mqtt_id, "wrong")
    assert not login(secured, "nobody", "wrong")
    assert not login(secured)  # anonymous


@broker_db
def test_a_device_cannot_take_over_anothers_session_with_its_client_id(secured, pair, accounts):
    """The devices' listener makes each device's client id its username, so A connecting
    with B's client id (as B's own session would be named) disconnects no one."""
    (a, a_pw), (b, b_pw) = pair
    secured.authorize()
    device_b = accounts(b.mqtt_id, b_pw, subscribe=[topic(b.mqtt_id, "cue")], client_id=b.mqtt_id)
    intruder = accounts(a.mqtt_id, a_pw, client_id=b.mqtt_id)
    assert intruder.accepted
    # B still holds its connection: a cue for it arrives after A's CONNACK (a take-over
    # would have closed B's socket before that).
    for_b = cue_fire(device=b, kind="tap")
    wait_for(lambda: device_b.received())
    assert [json.loads(p)["id"] for _, p in device_b.received()] == [for_b.pk]
    assert not device_b.dropped.is_set()


@broker_db
def test_a_device_receives_its_own_cues_and_never_anothers(secured, pair, accounts):
    (a, a_pw), (b, b_pw) = pair
    secured.authorize()
    own, other = topic(a.mqtt_id, "cue"), topic(b.mqtt_id, "cue")
    spy = accounts(a.mqtt_id, a_pw, subscribe=[own, other, "#", topic("+", "cue"), topic(b.mqtt_id, "ack")])
    device_b = accounts(b.mqtt_id, b_pw, subscribe=[topic(b.mqtt_id, "cue")])
    for_b = cue_fire(device=b, kind="tap")  # published by the server's account (MQTT_URL)
    for_a = cue_fire(device=a, kind="pulse")
    wait_for(lambda: any(t == own for t, _ in spy.received()))
    wait_for(lambda: device_b.received())
    assert {t for t, _ in spy.received()} == {own}
    assert {json.loads(p)["id"] for _, p in spy.received()} == {for_a.pk}
    assert [json.loads(p)["id"] for _, p in device_b.received()] == [for_b.pk]
    # B's ack reaches the server, never A.
    server = accounts(SERVER, secured.server_password, subscribe=[topic("+", "ack")])
    device_b.publish(topic(b.mqtt_id, "ack"), json.dumps({"id": for_b.pk, "status": "done"}))
    wait_for(lambda: server.received())
    sentinel = cue_fire(device=a, kind="flash")
    wait_for(lambda: any(json.loads(p)["id"] == sentinel.pk for _, p in spy.received()))
    assert {t for t, _ in spy.received()} == {own}


@broker_db
def test_a_device_can_neither_publish_cues_nor_speak_for_another(secured, pair, accounts):
    (a, a_pw), (b, b_pw) = pair
    secured.authorize()
    server = accounts(SERVER, secured.server_password, subscribe=[topic("+", "ack"), topic("+", "status")])
    device_a = accounts(a.mqtt_id, a_pw, subscribe=[topic(a.mqtt_id, "cue")])
    device_b = accounts(b.mqtt_id, b_pw, subscribe=[topic(b.mqtt_id, "cue")])
    forged = json.dumps({"id": 999999, "kind": "flash", "params": {}, "event": "manual"})
    # A forges cues for itself and for B, and an ack and a status in B's name.
    device_a.publish(topic(a.mqtt_id, "cue"), forged)
    device_a.publish(topic(b.mqtt_id, "cue"), forged)
    device_a.publish(topic(b.mqtt_id, "ack"), json.dumps({"id": 1, "status": "done"}))
    device_a.publish(topic(b.mqtt_id, "status"), "online", retain=True)
    # Then what A may say, and real cues from the server.
    device_a.publish(topic(a.mqtt_id, "ack"), json.dumps({"id": 2, "status": "done"}))
    device_a.publish(topic(a.mqtt_id, "status"), "online", retain=True)
    real_a, real_b = cue_fire(device=a, kind="pulse"), cue_fire(device=b, kind="pulse")
    wait_for(lambda: len(server.received()) >= 2 and device_a.received() and device_b.received())
    assert server.received() == [
        (topic(a.mqtt_id, "ack"), json.dumps({"id": 2, "status": "done"}).encode()),
        (topic(a.mqtt_id, "status"), b"online"),
    ]
    assert [json.loads(p)["id"] for _, p in device_a.received()] == [real_a.pk]
    assert [json.loads(p)["id"] for _, p in device_b.received()] == [real_b.pk]
    # Nor did A leave a retained status in B's name: a new subscriber gets A's only.
    late = accounts(SERVER, secured.server_password, subscribe=[topic("+", "status")])
    wait_for(lambda: late.received())
    device_a.publish(topic(a.mqtt_id, "status"), "online", retain=True)  # a sentinel after the retained
    wait_for(lambda: len(late.received()) >= 2)
    assert {t for t, _ in late.received()} == {topic(a.mqtt_id, "status")}


@broker_db
def test_an_event_cue_and_the_simulators_ack_through_the_acl(secured, acl_node, tmp_path, pulse_rule, make_deal, led):
    credentials = tmp_path / "simulated.json"
    # The operator's way to a simulated room: new passwords for its devices, in a file.
    secured.authorize("--reset-credentials", str(credentials), "--room", str(led.room_id))
    assert oct(credentials.stat().st_mode & 0o777) == "0o600"
    passwords = load_credentials(credentials)
    assert set(passwords) == {led.mqtt_id}
    listener = AckListener(secured.url_as(SERVER, secured.server_password), sweep_every=0.05)
    thread = threading.Thread(target=listener.run, daemon=True)
    thread.start()
    sim = SimulatedDevice(
        secured.url,
        led.mqtt_id,
        node=acl_node,
        username=led.mqtt_id,
        password=passwords[led.mqtt_id],
        out=lambda line: None,
    )
    sim.start()
    try:
        assert listener.subscribed.wait(5) and sim.ready.wait(5)
        wait_for(lambda: Device.objects.get(pk=led.pk).online)  # its retained "online"
        deal_open_now(deal=make_deal())
        cue = wait_for(lambda: Cue.objects.filter(device=led, status=Cue.Status.ACKED).first())
        assert cue.event_type == "deal.opened" and [c["id"] for c in sim.received] == [cue.pk]
        # Its last will still works under the ACL: the broker says "offline" for it.
        sim.client.loop_stop()
        sim.client.socket().close()
        wait_for(lambda: not Device.objects.get(pk=led.pk).online)
    finally:
        sim.stop(clean=False)
        listener.stop()
        thread.join(5)


@broker_db
def test_a_disabled_or_removed_device_is_refused_after_regenerating_and_reloading(secured, pair, accounts, room):
    (a, a_pw), (b, b_pw) = pair
    gone, gone_pw = device_create(room=room, name="Gone", kind="light", mqtt_id=f"dev-gone-{secrets.token_hex(3)}")
    secured.authorize()
    connected_b = accounts(b.mqtt_id, b_pw, subscribe=[topic(b.mqtt_id, "cue")])
    assert connected_b.accepted and login(secured, gone.mqtt_id, gone_pw)
    old_a = a_pw
    new_a = device_reset_password(device=a)
    device_set_active(device=b, active=False)
    Device.objects.filter(pk=gone.pk).delete()
    secured.authorize()  # rewrite the files, SIGHUP
    # The reload drops B's open connection, and B, the removed device and A's old password
    # are refused from then on.
    assert connected_b.dropped.wait(10)
    wait_for(lambda: not login(secured, a.mqtt_id, old_a))
    assert not login(secured, b.mqtt_id, b_pw)
    assert not login(secured, gone.mqtt_id, gone_pw)
    assert login(secured, a.mqtt_id, new_a)
    assert login(secured, SERVER, secured.server_password)
    assert b.mqtt_id not in (secured.auth / "acl").read_text()
