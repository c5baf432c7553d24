"""Fixtures shared by the streams tests: a creator's shop with two SKUs, a scheduled and a
live stream (pinned SKUs, one open flash deal), and factories for more of each.

Times: the live stream's deal is open in real time (it opened a minute ago and closes in an
hour), because the buy path checks a deal's ``closes_at`` against the clock. Tests of the
scheduler pass their own ``now`` to ``streams_tick`` instead.
"""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.utils import timezone

from apps.streams.models import FlashDeal, Stream
from apps.streams.services import pin_add, stream_start
from tests.factories import CreatorFactory, StaffFactory, UserFactory, make_buyer, make_sku

DEAL_PRICE = Decimal("12.00")
NORMAL_PRICE = Decimal("20.00")


@pytest.fixture(autouse=True)
def _empty_local_cache():
    """Presence counts live in the cache, keyed by stream id, and ids repeat after a rolled
    back test: start every test with an empty in-process cache. (A shared Redis cache is
    left alone; flushing it could hit data that is not the test's.)"""
    cache = caches["default"]
    if type(cache).__name__ == "LocMemCache":
        cache.clear()
        # Without Redis this process's own counts are the whole presence count.
        from apps.streams.services import _local_presence

        local = _local_presence.current()
        if local is not None:
            local.counts.clear()
    yield


@pytest.fixture
def creator(db):
    """A creator with a shop."""
    return CreatorFactory()


@pytest.fixture
def other_creator(db):
    """A creator with another shop."""
    return CreatorFactory()


@pytest.fixture
def staff_user(db):
    return StaffFactory()


@pytest.fixture
def viewer(db):
    """A signed-up viewer (no role)."""
    return UserFactory()


@pytest.fixture
def buyer(db):
    """A viewer with a payment method and an address: one-tap buys."""
    return make_buyer(display_name="Ada")


@pytest.fixture
def deal_sku(creator):
    """The SKU the live stream's flash deal is on: 20.00, 30 units at the default location."""
    return make_sku(creator.shop, price=str(NORMAL_PRICE), stock=30)


@pytest.fixture
def plain_sku(creator):
    """A second pinned SKU without a deal: 5.00, 10 units."""
    return make_sku(creator.shop, price="5.00", stock=10)


@pytest.fixture
def make_stream(db):
    """``make_stream(shop, starts_at=..., ends_at=None, title=...)`` -> a scheduled Stream."""

    def _make(shop, *, starts_at=None, ends_at=None, title="Friday drop", **fields):
        return Stream.objects.create(
            shop=shop,
            title=title,
            starts_at=starts_at or timezone.now() + timedelta(hours=1),
            ends_at=ends_at,
            **fields,
        )

    return _make


@pytest.fixture
def make_deal(db):
    """``make_deal(stream, sku, opens_at=..., closes_at=..., quantity=5, price=12.00,
    per_buyer_limit=2)`` -> a scheduled FlashDeal (not opened)."""

    def _make(stream, sku, *, opens_at=None, closes_at=None, quantity=5, price=DEAL_PRICE, per_buyer_limit=2, **kw):
        opens_at = opens_at or timezone.now() - timedelta(minutes=1)
        return FlashDeal.objects.create(
            stream=stream,
            sku=sku,
            price=price,
            quantity=quantity,
            per_buyer_limit=per_buyer_limit,
            opens_at=opens_at,
            closes_at=closes_at or opens_at + timedelta(hours=1),
            **kw,
        )

    return _make


@pytest.fixture
def scheduled_stream(creator, make_stream):
    """A stream of ``creator``'s shop starting in an hour, nothing pinned."""
    return make_stream(creator.shop, title="Next week's show")


@pytest.fixture
def live_stream(creator, deal_sku, plain_sku, make_stream, make_deal):
    """A live stream of ``creator``'s shop: ``deal_sku`` and ``plain_sku`` pinned (in that
    order) and an open flash deal on ``deal_sku`` (12.00, 5 units, 2 per buyer, open for
    the next hour). The deal is ``live_stream.deals.get()`` or the ``open_deal`` fixture."""
    now = timezone.now()
    stream = make_stream(creator.shop, starts_at=now - timedelta(minutes=5), title="Live now")
    pin_add(stream=stream, sku=deal_sku)
    pin_add(stream=stream, sku=plain_sku)
    make_deal(stream, deal_sku, opens_at=now - timedelta(minutes=1), closes_at=now + timedelta(hours=1))
    return stream_start(stream=stream, now=now)


@pytest.fixture
def open_deal(live_stream):
    deal = live_stream.deals.get()
    assert deal.status == FlashDeal.Status.OPEN
    return deal


# -- WebSocket tests (test_consumers.py, test_broadcast.py) ---------------------------------


@pytest.fixture(
    params=["memory", pytest.param("pubsub", marks=pytest.mark.redis), pytest.param("core", marks=pytest.mark.redis)]
)
def layer(request, settings):
    """Each test runs on the in-memory layer and on both channels-redis layers against the
    real Redis; returns the layer."""
    if request.param == "memory":
        from channels.layers import channel_layers

        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
        channel_layers.backends.clear()
        return channel_layers["default"]
    from tests.helpers import use_redis_layer

    return use_redis_layer(settings, os.environ["REDIS_URL"], request.param)


@pytest.fixture
def stream_setup(db):
    """A live stream with two pinned SKUs (PIN-0, PIN-1: 50 units at 10.00 each)."""
    creator = CreatorFactory()
    shop = creator.shop
    skus = [make_sku(shop, code=f"PIN-{i}", stock=50, price="10.00") for i in range(2)]
    stream = Stream.objects.create(shop=shop, title="Live now", starts_at=timezone.now())
    stream_start(stream=stream)
    for sku in skus:
        pin_add(stream=stream, sku=sku)
    # The set-up's own events leave through the background fan-out loop; let them go before
    # a test's socket subscribes, or it may receive them late.
    from creatorcommerce.spine.fanout import drain

    drain()
    return {
        "creator": creator,
        "shop": shop,
        "stream": Stream.objects.select_related("shop").get(pk=stream.pk),
        "skus": skus,
    }


@pytest.fixture
def session_key(db):
    from tests.streams.sockets import new_session

    return new_session()
