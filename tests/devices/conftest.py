"""Fixtures of the devices tests: a shop with a room and devices made through the services,
a live stream with a scheduled deal on a SKU, and helpers to wait for a condition."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.devices.services import cue_rule_create, device_create, room_create
from apps.streams.services import deal_schedule, stream_create, stream_start
from tests.factories import CreatorFactory, make_sku
from tests.helpers import wait_for  # noqa: F401 (the devices tests import it from here)


@pytest.fixture
def shop(db):
    return CreatorFactory().shop


@pytest.fixture
def room(shop):
    return room_create(shop=shop, name="Studio A")


@pytest.fixture
def make_device(room):
    def make(kind="led_strip", name="LED strip"):
        device, _password = device_create(room=room, name=name, kind=kind, mqtt_id=f"dev-{secrets.token_hex(4)}")
        return device

    return make


@pytest.fixture
def led(make_device):
    return make_device()


@pytest.fixture
def sku(shop):
    return make_sku(shop, stock=50)


@pytest.fixture
def live_stream(shop, sku):
    stream = stream_create(shop=shop, title="Demo drop", starts_at=timezone.now() + timedelta(hours=1))
    return stream_start(stream=stream)


@pytest.fixture
def make_deal(live_stream, sku):
    def make():
        now = timezone.now()
        return deal_schedule(
            stream=live_stream,
            sku=sku,
            price="5.00",
            quantity=5,
            opens_at=now + timedelta(hours=1),
            closes_at=now + timedelta(hours=2),
        )

    return make


@pytest.fixture
def pulse_rule(shop, led, live_stream):
    return cue_rule_create(
        shop=shop, event_type="deal.opened", device=led, kind="pulse", params={"color": "#ff0000"}, stream=live_stream
    )
