from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.streams.models import FlashDeal, Stream
from apps.streams.services import deal_open, pin_add, stream_start
from tests.factories import CreatorFactory, make_sku


@pytest.fixture
def shop(db):
    return CreatorFactory().shop


@pytest.fixture
def deal_sku(shop):
    return make_sku(shop, code="TEE-DEAL", price="20.00", stock=30)


@pytest.fixture
def plain_sku(shop):
    return make_sku(shop, code="MUG", price="8.50", stock=10)


@pytest.fixture
def stream(shop, deal_sku, plain_sku):
    """A live stream with both SKUs pinned and an open deal on ``deal_sku``: 12.00, 5 units,
    2 per buyer."""
    now = timezone.now()
    stream = Stream.objects.create(shop=shop, title="Live", starts_at=now - timedelta(minutes=5))
    pin_add(stream=stream, sku=deal_sku)
    pin_add(stream=stream, sku=plain_sku)
    stream = stream_start(stream=stream, now=now)
    deal = FlashDeal.objects.create(
        stream=stream,
        sku=deal_sku,
        price="12.00",
        quantity=5,
        per_buyer_limit=2,
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(hours=1),
    )
    stream.deal = deal_open(deal=deal)
    return stream


def post_quote(client, body):
    return client.post("/api/v1/quotes/", json.dumps(body), content_type="application/json")


def post_buy(client, body, key):
    return client.post(
        "/api/v1/orders/", json.dumps(body), content_type="application/json", headers={"Idempotency-Key": key}
    )
