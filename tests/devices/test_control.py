"""The control room's devices panel (docs/devices.md, "Control room"): where cue and
device-status events go (a stream's cues to ``control.<stream>``, the rest to every control
room of the shop, never to viewers), what the control-room socket makes of them, the panel
on the page, and the API the panel uses (a cue fired for the stream; the log with the
shop's stream-less cues). Sockets run through the real ASGI application, on the in-memory
layer and on both channels-redis layers against the real Redis."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client
from django.utils import timezone

from apps.catalog.services import stock_adjust
from apps.devices.models import Cue
from apps.devices.services import cue_fire, device_create, device_status_set, room_create
from apps.devices.transport import close_driver
from apps.streams.models import Stream
from apps.streams.services import stream_create
from creatorcommerce.asgi import application
from tests.factories import CreatorFactory, StaffFactory
from tests.helpers import WAIT
from tests.streams import conftest as streams_fixtures
from tests.streams.sockets import ORIGIN, open_viewer, receive_until

# The streams tests' live stream with two pinned SKUs, and their channel layers.
layer = streams_fixtures.layer
stream_setup = streams_fixtures.stream_setup


@pytest.fixture
def embedded(settings):
    """Embedded mode: the log driver, and the in-process simulated device acks each cue."""
    settings.MQTT_URL = ""
    settings.DEVICES_SIMULATE_IN_PROCESS = True
    yield
    close_driver()


def _device(shop, kind="led_strip", name="LED strip"):
    room = shop.rooms.first() or room_create(shop=shop, name="Studio")
    device, _password = device_create(room=room, name=name, kind=kind, mqtt_id=f"ctl-{secrets.token_hex(4)}")
    return device


async def _control(stream, user):
    client = Client()
    await sync_to_async(client.force_login)(user)
    comm = WebsocketCommunicator(
        application,
        f"/ws/streams/{stream.pk}/control/",
        headers=[(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()), (b"origin", ORIGIN.encode())],
    )
    connected, _ = await comm.connect(timeout=WAIT)
    assert connected
    assert (await comm.receive_json_from(timeout=WAIT))["type"] == "snapshot"
    return comm


def _of(messages, kind):
    return [m for m in messages if m["type"] == kind]


def _stock_down(sku):
    with transaction.atomic():
        stock_adjust(sku=sku, add=-1)


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_streams_cue_reaches_its_control_room_and_no_viewer(layer, stream_setup, embedded, close_db_after):
    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    led = await sync_to_async(_device)(stream_setup["shop"])
    control = await _control(stream, stream_setup["creator"])
    viewer, _snapshot = await open_viewer(stream)

    cue = await sync_to_async(cue_fire)(device=led, kind="pulse", params={"color": "#ff3366"}, stream=stream)
    got = await receive_until(control, lambda got: any(m["cue"]["status"] == "acked" for m in _of(got, "cue")))
    cues = [m["cue"] for m in _of(got, "cue")]
    assert [c["status"] for c in cues] == ["sent", "acked"]
    assert {c["id"] for c in cues} == {cue.pk}
    assert cues[0]["event"] == "manual" and cues[0]["device"] == led.pk and cues[0]["stream"] == stream.pk
    assert isinstance(cues[1]["latency_ms"], int) and cues[1]["detail"] == "simulated"
    assert all(m["at"] for m in _of(got, "cue"))

    # The viewer gets the stock change that was committed after the cue, and nothing of it.
    await sync_to_async(_stock_down)(sku)
    seen = await receive_until(viewer, lambda got: any(m["type"] == "stock" for m in got))
    assert not [m for m in seen if m["type"] in ("cue", "device")]
    await control.disconnect()
    await viewer.disconnect()


def _second_stream(shop):
    return stream_create(shop=shop, title="Next week", starts_at=timezone.now() + timedelta(days=7))


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_status_and_streamless_cues_reach_every_control_room_of_the_shop_only(
    layer, stream_setup, embedded, close_db_after
):
    stream, shop = stream_setup["stream"], stream_setup["shop"]
    led = await sync_to_async(_device)(shop)
    later = await sync_to_async(_second_stream)(shop)
    live_room = await _control(stream, stream_setup["creator"])
    scheduled_room = await _control(later, stream_setup["creator"])
    other_creator = await sync_to_async(CreatorFactory)()
    other_stream = await sync_to_async(_second_stream)(other_creator.shop)
    other_room = await _control(other_stream, other_creator)
    viewer, _snapshot = await open_viewer(stream)

    await sync_to_async(device_status_set)(mqtt_id=led.mqtt_id, online=True)
    streamless = await sync_to_async(cue_fire)(device=led, kind="flash")  # no stream: a stock threshold's kind
    for room in (live_room, scheduled_room):
        got = await receive_until(room, lambda got: any(m["cue"]["status"] == "acked" for m in _of(got, "cue")))
        assert _of(got, "device") == [
            {"type": "device", "id": led.pk, "room": led.room_id, "online": True, "at": _of(got, "device")[0]["at"]}
        ]
        assert {m["cue"]["id"] for m in _of(got, "cue")} == {streamless.pk}

    # A cue of the live stream reaches its room, not the other stream's: the next stream-less
    # cue is the first the scheduled stream's room hears of.
    of_stream = await sync_to_async(cue_fire)(device=led, kind="pulse", stream=stream)
    after = await sync_to_async(cue_fire)(device=led, kind="flash")
    got = await receive_until(scheduled_room, lambda got: any(m["cue"]["id"] == after.pk for m in _of(got, "cue")))
    assert of_stream.pk not in {m["cue"]["id"] for m in _of(got, "cue")}
    got = await receive_until(live_room, lambda got: any(m["cue"]["id"] == after.pk for m in _of(got, "cue")))
    assert of_stream.pk in {m["cue"]["id"] for m in _of(got, "cue")}

    # Another shop's control room and the viewers heard none of it: each gets a later event
    # of its own first.
    await sync_to_async(_stock_down)(stream_setup["skus"][0])
    seen = await receive_until(viewer, lambda got: any(m["type"] == "stock" for m in got))
    assert not [m for m in seen if m["type"] in ("cue", "device")]
    other_led = await sync_to_async(_device)(other_creator.shop)
    await sync_to_async(device_status_set)(mqtt_id=other_led.mqtt_id, online=True)
    got = await receive_until(other_room, lambda got: bool(_of(got, "device")))
    assert _of(got, "cue") == [] and [m["id"] for m in _of(got, "device")] == [other_led.pk]
    for comm in (live_room, scheduled_room, other_room, viewer):
        await comm.disconnect()


# -- the page and the API ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_panel_is_on_the_creators_control_room_with_devices_and_the_log(stream_setup, embedded):
    stream, shop = stream_setup["stream"], stream_setup["shop"]
    client = Client()
    client.force_login(stream_setup["creator"])
    assert 'id="devices-panel"' not in client.get(f"/streams/{stream.pk}/control/").content.decode()  # no device

    led = _device(shop)
    cue = cue_fire(device=led, kind="pulse", stream=stream)
    page = client.get(f"/streams/{stream.pk}/control/").content.decode()
    assert 'id="devices-panel"' in page and "js/devices-panel.js" in page and 'id="devices-initial"' in page
    assert f'"id": {cue.pk}' in page and '"cue_kinds"' in page
    assert 'id="devices-simulated"' in page  # embedded mode says so

    staff = Client()
    staff.force_login(StaffFactory())
    page = staff.get(f"/streams/{stream.pk}/control/")
    assert page.status_code == 200 and 'id="devices-panel"' not in page.content.decode()  # their shop's API


@pytest.mark.django_db
def test_fire_for_the_stream_and_read_the_control_rooms_log(stream_setup, embedded):
    stream, shop = stream_setup["stream"], stream_setup["shop"]
    led = _device(shop)
    client = Client()
    client.force_login(stream_setup["creator"])
    fired = client.post(
        f"/api/v1/devices/{led.pk}/cues/", {"kind": "pulse", "stream": stream.pk}, content_type="application/json"
    )
    assert fired.status_code == 201, fired.json()
    assert fired.json()["stream"] == stream.pk  # (sent after commit: this test never commits)
    streamless = cue_fire(device=led, kind="flash")
    other_stream = Stream.objects.create(shop=shop, title="Other", starts_at=timezone.now())
    elsewhere = cue_fire(device=led, kind="flash", stream=other_stream)

    ids = [c["id"] for c in client.get(f"/api/v1/devices/cues/?stream={stream.pk}").json()]
    assert ids == [fired.json()["id"]]
    ids = [c["id"] for c in client.get(f"/api/v1/devices/cues/?stream={stream.pk}&streamless=1").json()]
    assert set(ids) == {fired.json()["id"], streamless.pk} and elsewhere.pk not in ids

    foreign = _second_stream(CreatorFactory().shop)
    for bad in (foreign.pk, 10**9):
        answer = client.post(
            f"/api/v1/devices/{led.pk}/cues/", {"kind": "pulse", "stream": bad}, content_type="application/json"
        )
        assert answer.status_code == 400 and answer.json()["code"] == "invalid_stream"
    answer = client.post(
        f"/api/v1/devices/{led.pk}/cues/", {"kind": "pulse", "stream": "x"}, content_type="application/json"
    )
    assert answer.status_code == 400 and answer.json()["code"] == "invalid"
    assert not Cue.objects.filter(stream=foreign).exists()
