"""The viewer and control-room WebSockets, through the real ASGI application (origin guard,
session auth, routing), on the in-memory layer and on channels-redis with the real Redis."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import models, transaction
from django.utils import timezone

from apps.catalog.models import StockLevel
from apps.catalog.services import stock_adjust
from apps.streams.models import FlashDeal, Stream
from apps.streams.services import deal_open, pin_add, presence_count, presence_publish
from creatorcommerce.asgi import application
from tests.factories import CreatorFactory, StaffFactory, make_buyer, make_sku
from tests.helpers import WAIT
from tests.streams.sockets import (
    ORIGIN,
    close_code,
    collect,
    new_session,
    open_socket,
    open_viewer,
    receive_until,
    token_for,
    until,
)

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


async def test_snapshot_comes_first_with_pins_and_stock(layer, stream_setup, session_key, close_db_after):
    stream = stream_setup["stream"]
    comm = await open_socket(stream, token_for(stream, session_key=session_key), session_key=session_key)
    snapshot = await comm.receive_json_from(timeout=WAIT)
    assert snapshot["type"] == "snapshot"
    assert snapshot["seq"] == 0
    assert snapshot["stream"]["id"] == stream.pk and snapshot["stream"]["status"] == "live"
    assert [p["sku"] for p in snapshot["pins"]] == ["PIN-0", "PIN-1"]
    assert snapshot["stock"] == {"PIN-0": 50, "PIN-1": 50}
    assert snapshot["viewers"] == 1  # this socket counts itself
    assert {"sku", "title", "price", "available", "deal"} <= set(snapshot["pins"][0])
    await comm.disconnect()


def _burst(sku, n):
    for _ in range(n):
        with transaction.atomic():
            stock_adjust(sku=sku, add=-1)


async def test_burst_of_stock_changes_is_coalesced_and_ends_exact(
    layer, stream_setup, session_key, settings, close_db_after
):
    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    await sync_to_async(StockLevel.objects.filter(sku=sku).update)(available=600)
    comm = await open_socket(stream, token_for(stream, session_key=session_key), session_key=session_key)
    await comm.receive_json_from(timeout=WAIT)  # snapshot

    started = time.monotonic()
    await sync_to_async(_burst)(sku, 500)
    elapsed = time.monotonic() - started
    final = await receive_until(comm, lambda got: got[-1].get("stock") == {"PIN-0": 100})
    messages = [m for m in final if m["type"] == "stock"]
    assert not [m for m in await collect(comm, 0.3) if m["type"] == "stock"]  # nothing after the final one

    # At most 10 a second (plus the leading one), however many changes happened.
    assert len(messages) <= int((elapsed + 1.0) * settings.STREAM_PUSHES_PER_SECOND) + 2
    assert len(messages) < 500
    seqs = [m["seq"] for m in messages]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert messages[-1]["stock"] == {"PIN-0": 100}  # the final state, exactly
    await comm.disconnect()


@pytest.mark.parametrize(
    "case, expected",
    [
        ("expired", 4401),
        ("other_stream", 4401),
        ("garbage", 4401),
        ("other_session", 4401),
        ("other_origin", 4403),
        ("foreign_origin", 4403),
    ],
)
async def test_refused_handshakes(layer, stream_setup, session_key, settings, case, expected, close_db_after):
    stream = stream_setup["stream"]
    token = token_for(stream, session_key=session_key)
    kwargs = {"session_key": session_key}
    if case == "expired":
        settings.VIEWER_TOKEN_TTL_SECONDS = -1
    elif case == "other_stream":
        other = await sync_to_async(Stream.objects.create)(shop=stream.shop, title="Other", starts_at=timezone.now())
        token = token_for(stream, stream_id=other.pk, session_key=session_key)
    elif case == "garbage":
        token = "not-a-token"
    elif case == "other_session":
        kwargs["session_key"] = await sync_to_async(new_session)()
    elif case == "other_origin":
        kwargs["origin"] = "http://localhost"  # an allowed host, but not the page the token was issued to
    elif case == "foreign_origin":
        kwargs["origin"] = "https://evil.example"
    comm = await open_socket(stream, token, **kwargs)
    assert await close_code(comm) == expected


async def test_an_unknown_stream_is_closed_with_4404(layer, stream_setup, session_key, close_db_after):
    from apps.streams.broadcast import broadcaster_for

    stream = stream_setup["stream"]
    missing = stream.pk + 1000
    token = token_for(stream, stream_id=missing, session_key=session_key)
    comm = await open_socket(stream, token, session_key=session_key, path=f"/ws/streams/{missing}/?token={token}")
    assert await close_code(comm) == 4404
    assert broadcaster_for(missing) is None  # nothing left behind

    # A stream deleted while viewers watch it: they stay, a new viewer is refused.
    watching = await open_socket(stream, token_for(stream, session_key=session_key), session_key=session_key)
    await watching.receive_json_from(timeout=WAIT)
    await sync_to_async(Stream.objects.filter(pk=stream.pk).delete)()
    late = await sync_to_async(new_session)()
    comm = await open_socket(stream, token_for(stream, session_key=late), session_key=late)
    assert await close_code(comm) == 4404
    await comm.disconnect()
    assert broadcaster_for(stream.pk).members == 1
    await watching.disconnect()
    assert broadcaster_for(stream.pk) is None


async def test_ping_pong_and_flood_is_closed_with_4029(layer, stream_setup, session_key, settings, close_db_after):
    settings.STREAM_CLIENT_MESSAGES_PER_10S = 20
    stream = stream_setup["stream"]
    comm = await open_socket(stream, token_for(stream, session_key=session_key), session_key=session_key)
    await comm.receive_json_from(timeout=WAIT)
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=WAIT) == {"type": "pong"}
    for _ in range(25):
        await comm.send_json_to({"type": "ping"})
    codes = []
    while True:
        message = await comm.receive_output(timeout=WAIT)
        if message["type"] == "websocket.close":
            codes.append(message["code"])
            break
    assert codes == [4029]
    await comm.disconnect()


async def test_presence_counts_viewers(layer, stream_setup, session_key, close_db_after):
    stream = stream_setup["stream"]
    key_a, key_b = await sync_to_async(new_session)(), await sync_to_async(new_session)()
    a = await open_socket(stream, token_for(stream, session_key=key_a), session_key=key_a)
    b = await open_socket(stream, token_for(stream, session_key=key_b), session_key=key_b)
    await a.receive_json_from(timeout=WAIT)
    await b.receive_json_from(timeout=WAIT)
    assert await sync_to_async(presence_count)(stream_id=stream.pk) == 2
    await sync_to_async(presence_publish)(stream_ids=[stream.pk])
    assert await a.receive_json_from(timeout=WAIT) == {"type": "presence", "viewers": 2}
    await b.disconnect()
    await asyncio.sleep(0.1)
    assert await sync_to_async(presence_count)(stream_id=stream.pk) == 1
    await sync_to_async(presence_publish)(stream_ids=[stream.pk])
    assert await a.receive_json_from(timeout=WAIT) == {"type": "presence", "viewers": 1}
    await a.disconnect()


@pytest.mark.parametrize(
    "frame",
    [
        # Under STREAM_CLIENT_MESSAGE_MAX_CHARS (1,024), so it reaches the parser: RecursionError.
        pytest.param({"text": "[" * 1020}, id="too-deep"),
        pytest.param({"text": "{not json"}, id="not-json"),
        pytest.param({"text": '{"type": "ping", "pad": "' + "x" * 5000 + '"}'}, id="too-large"),
        pytest.param({"bytes": b"\x00\x01binary"}, id="binary"),
    ],
)
async def test_a_frame_the_socket_cannot_parse_closes_it_with_4400_and_it_stops_counting(
    layer, stream_setup, session_key, frame, close_db_after
):
    stream = stream_setup["stream"]
    watcher, _ = await open_viewer(stream)
    comm = await open_socket(stream, token_for(stream, session_key=session_key), session_key=session_key)
    await comm.receive_json_from(timeout=WAIT)
    assert await sync_to_async(presence_count)(stream_id=stream.pk) == 2
    await comm.send_input({"type": "websocket.receive", **frame})
    assert await close_code(comm) == 4400
    await comm.disconnect()
    await _until_viewers(stream, 1)
    # The other viewer's socket is untouched.
    await watcher.send_json_to({"type": "ping"})
    assert await watcher.receive_json_from(timeout=WAIT) == {"type": "pong"}
    await watcher.disconnect()
    await _until_viewers(stream, 0)


async def test_a_viewer_socket_that_crashes_stops_counting(
    layer, stream_setup, session_key, monkeypatch, close_db_after
):
    from apps.streams.consumers import ViewerConsumer

    stream = stream_setup["stream"]
    comm = await open_socket(stream, token_for(stream, session_key=session_key), session_key=session_key)
    await comm.receive_json_from(timeout=WAIT)
    assert await sync_to_async(presence_count)(stream_id=stream.pk) == 1

    async def crash(self, text_data=None, bytes_data=None):
        raise RuntimeError("a bug in the consumer")

    monkeypatch.setattr(ViewerConsumer, "receive", crash)
    await comm.send_json_to({"type": "ping"})
    with pytest.raises(RuntimeError):
        await comm.receive_output(timeout=WAIT)
    await _until_viewers(stream, 0)


async def _until_viewers(stream, expected: int) -> None:
    async def counted():
        return await sync_to_async(presence_count)(stream_id=stream.pk) == expected

    await until(counted, what=f"{expected} viewers counted")


async def test_pinning_sends_pins_and_follows_the_new_skus_stock(layer, stream_setup, session_key, close_db_after):
    stream = stream_setup["stream"]
    comm = await open_socket(stream, token_for(stream, session_key=session_key), session_key=session_key)
    await comm.receive_json_from(timeout=WAIT)
    new = await sync_to_async(make_sku)(stream.shop, code="PIN-NEW", stock=7)
    await sync_to_async(pin_add)(stream=stream, sku=new)
    pin = await comm.receive_json_from(timeout=WAIT)
    assert pin["type"] == "pin" and [p["sku"] for p in pin["pins"]][-1] == "PIN-NEW"
    await sync_to_async(_burst)(new, 1)
    stock = await comm.receive_json_from(timeout=WAIT)
    assert stock["type"] == "stock" and stock["stock"] == {"PIN-NEW": 6}
    await comm.disconnect()


def _buy_in_stream(buyer, sku, stream, key):
    from apps.orders.services import order_place, request_fingerprint

    return order_place(
        buyer=buyer,
        sku_code=sku.code,
        quantity=1,
        idempotency_key=key,
        stream_id=stream.pk,
        fingerprint=request_fingerprint({"sku": sku.code, "stream": stream.pk, "key": key}),
    )


async def test_purchase_in_stream_sends_deal_and_interaction_without_personal_data(
    layer, stream_setup, session_key, close_db_after
):
    stream, sku = stream_setup["stream"], stream_setup["skus"][1]
    now = timezone.now()
    deal = await sync_to_async(FlashDeal.objects.create)(
        stream=stream,
        sku=sku,
        price="7.00",
        quantity=5,
        per_buyer_limit=1,
        opens_at=now - timedelta(seconds=1),
        closes_at=now + timedelta(minutes=5),
    )
    await sync_to_async(deal_open)(deal=deal)
    comm = await open_socket(stream, token_for(stream, session_key=session_key), session_key=session_key)
    snapshot = await comm.receive_json_from(timeout=WAIT)
    assert snapshot["pins"][1]["deal"]["remaining"] == 5 and snapshot["pins"][1]["deal"]["price"] == "7.00"

    buyer = await sync_to_async(make_buyer)(email="shy@example.test", display_name="")
    outcome = await sync_to_async(_buy_in_stream)(buyer, sku, stream, "stream-buy-001")
    assert outcome.status == 201 and outcome.body["total"] == "7.00"
    messages = await receive_until(
        comm,
        lambda got: (
            any(m["type"] == "interaction" for m in got)
            and any(m["type"] == "deal" and m["deal"]["remaining"] == 4 for m in got)
        ),
    )
    interactions = [m for m in messages if m["type"] == "interaction"]
    assert interactions == [{"type": "interaction", "kind": "purchase", "sku": "PIN-1", "quantity": 1, "name": None}]
    deals = [m for m in messages if m["type"] == "deal"]
    assert deals[-1]["sku"] == "PIN-1" and deals[-1]["deal"]["remaining"] == 4
    assert "shy@example.test" not in str(messages)
    await comm.disconnect()


async def _control_socket(stream, user):
    from django.test import Client

    client = Client()
    await sync_to_async(client.force_login)(user)
    cookie = client.cookies["sessionid"].value
    comm = WebsocketCommunicator(
        application,
        f"/ws/streams/{stream.pk}/control/",
        headers=[(b"cookie", f"sessionid={cookie}".encode()), (b"origin", ORIGIN.encode())],
    )
    connected, _ = await comm.connect(timeout=WAIT)
    assert connected
    return comm


async def test_control_room_admits_owner_and_staff_only(layer, stream_setup, session_key, close_db_after):
    stream = stream_setup["stream"]
    owner = await _control_socket(stream, stream_setup["creator"])
    snapshot = await owner.receive_json_from(timeout=WAIT)
    assert snapshot["type"] == "snapshot" and snapshot["sales"]["orders"] == 0 and "viewers" in snapshot
    await owner.disconnect()

    staff = await _control_socket(stream, await sync_to_async(StaffFactory)())
    assert (await staff.receive_json_from(timeout=WAIT))["type"] == "snapshot"
    await staff.disconnect()

    other = await _control_socket(stream, await sync_to_async(CreatorFactory)())
    assert await close_code(other) == 4403

    anonymous = WebsocketCommunicator(
        application, f"/ws/streams/{stream.pk}/control/", headers=[(b"origin", ORIGIN.encode())]
    )
    await anonymous.connect(timeout=WAIT)
    assert await close_code(anonymous) == 4401


async def test_control_room_gets_sales(layer, stream_setup, session_key, close_db_after):
    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    owner = await _control_socket(stream, stream_setup["creator"])
    await owner.receive_json_from(timeout=WAIT)
    buyer = await sync_to_async(make_buyer)()
    await sync_to_async(_buy_in_stream)(buyer, sku, stream, "control-buy-01")
    messages = await receive_until(
        owner,
        lambda got: any(m["type"] == "sale" for m in got) and {"PIN-0": 49} in [m.get("stock") for m in got],
    )
    messages += await collect(owner, 0.3)
    sales = [m for m in messages if m["type"] == "sale"]
    assert len(sales) == 1 and sales[0]["total"] == "10.00"
    assert [m["stock"] for m in messages if m["type"] == "stock"][-1] == {"PIN-0": 49}
    await owner.disconnect()


async def test_app_client_opens_the_socket_with_its_session_token(layer, stream_setup, close_db_after):
    """An app client: signs up headless, asks for a viewer token with X-Session-Token, and
    opens the socket with the same header and no Origin."""
    from django.test import Client

    stream = stream_setup["stream"]
    client = Client()
    signup = await sync_to_async(client.post)(
        "/_allauth/app/v1/auth/signup",
        {"email": "app@example.test", "password": "Str0ng-pass-phrase"},
        content_type="application/json",
    )
    session_token = signup.json()["meta"]["session_token"]
    issued = await sync_to_async(Client().post)(
        f"/api/v1/streams/{stream.pk}/viewer-token", headers={"X-Session-Token": session_token}
    )
    assert issued.status_code == 200
    comm = WebsocketCommunicator(
        application,
        f"/ws/streams/{stream.pk}/?token={issued.json()['token']}",
        headers=[(b"x-session-token", session_token.encode())],
    )
    connected, _ = await comm.connect(timeout=WAIT)
    assert connected
    assert (await comm.receive_json_from(timeout=WAIT))["type"] == "snapshot"
    await comm.disconnect()

    stranger = WebsocketCommunicator(application, f"/ws/streams/{stream.pk}/?token={issued.json()['token']}")
    await stranger.connect(timeout=WAIT)
    assert await close_code(stranger) == 4401  # the token is bound to that user


async def test_other_locations_do_not_touch_the_counter(layer, stream_setup, session_key, close_db_after):
    """Viewers see the default location's count (what buys take); a venue's stock moving does
    not overwrite it, and does not block later default-location updates."""
    from apps.catalog.models import Location

    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    venue = await sync_to_async(Location.objects.create)(shop=stream_setup["shop"], name="Venue", kind="venue")
    comm = await open_socket(stream, token_for(stream, session_key=session_key), session_key=session_key)
    await comm.receive_json_from(timeout=WAIT)

    def venue_then_default():
        for n in (500, 501, 502):
            with transaction.atomic():
                stock_adjust(sku=sku, location=venue, set_to=n)
        with transaction.atomic():
            stock_adjust(sku=sku, add=-1)

    await sync_to_async(venue_then_default)()
    messages = await receive_until(comm, lambda got: got[-1].get("stock") == {"PIN-0": 49})
    assert [m["stock"] for m in messages if m["type"] == "stock"] == [{"PIN-0": 49}]
    await comm.disconnect()


async def test_a_second_deal_on_the_same_sku_reaches_viewers(layer, stream_setup, session_key, close_db_after):
    from apps.streams.services import deal_close

    stream, sku = stream_setup["stream"], stream_setup["skus"][1]
    now = timezone.now()

    def deal(price):
        return FlashDeal.objects.create(
            stream=stream, sku=sku, price=price, quantity=3, opens_at=now, closes_at=now + timedelta(minutes=5)
        )

    first = await sync_to_async(deal)("8.00")
    await sync_to_async(deal_open)(deal=first)
    for _ in range(3):  # push the first deal's version up
        await sync_to_async(lambda: FlashDeal.objects.filter(pk=first.pk).update(version=models.F("version") + 10))()
    comm = await open_socket(stream, token_for(stream, session_key=session_key), session_key=session_key)
    await comm.receive_json_from(timeout=WAIT)
    await sync_to_async(deal_close)(deal=first)
    second = await sync_to_async(deal)("7.00")
    await sync_to_async(deal_open)(deal=second)
    deals = await receive_until(comm, lambda got: got[-1]["type"] == "deal" and got[-1]["deal"] is not None)
    assert deals[-1]["deal"]["price"] == "7.00" and deals[-1]["deal"]["id"] == second.pk
    await comm.disconnect()


async def test_a_deleted_stream_tells_its_viewers(layer, stream_setup, session_key, close_db_after):
    from apps.streams.services import stream_delete

    stream = stream_setup["stream"]
    comm = await open_socket(stream, token_for(stream, session_key=session_key), session_key=session_key)
    await comm.receive_json_from(timeout=WAIT)  # the snapshot
    await sync_to_async(stream_delete)(stream=stream)
    messages = await receive_until(comm, lambda got: got[-1]["type"] == "stream")
    assert messages[-1] == {"type": "stream", "status": "deleted"}
    await comm.disconnect()


async def test_the_control_room_follows_an_edit_of_the_stream(layer, stream_setup, session_key, close_db_after):
    from apps.streams.services import stream_update

    stream = stream_setup["stream"]
    owner = await _control_socket(stream, stream_setup["creator"])
    await owner.receive_json_from(timeout=WAIT)
    await sync_to_async(stream_update)(stream=stream, changes={"title": "Renamed drop"})
    messages = await receive_until(owner, lambda got: got[-1]["type"] == "stream_updated")
    assert messages[-1]["title"] == "Renamed drop" and messages[-1]["status"] == stream.status
    await owner.disconnect()


async def test_a_refund_takes_the_order_out_of_the_control_rooms_sales(
    layer, stream_setup, session_key, close_db_after
):
    from apps.orders.services import order_refund

    stream, sku = stream_setup["stream"], stream_setup["skus"][0]
    owner = await _control_socket(stream, stream_setup["creator"])
    await owner.receive_json_from(timeout=WAIT)
    buyer = await sync_to_async(make_buyer)()
    outcome = await sync_to_async(_buy_in_stream)(buyer, sku, stream, "control-refund-1")
    await receive_until(owner, lambda got: any(m["type"] == "sale" for m in got))
    staff = await sync_to_async(StaffFactory)()
    await sync_to_async(order_refund)(order=outcome.order, actor=staff, restock=True, reason="Wrong size")
    messages = await receive_until(owner, lambda got: got[-1]["type"] == "sales")
    sales = messages[-1]["sales"]
    assert sales["orders"] == 0 and sales["revenue"] == "0" and sales["recent"] == []
    await owner.disconnect()
