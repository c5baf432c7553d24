"""Fixtures of the loyalty tests: a creator's shop with a live drop (one SKU pinned, one
with an open flash deal), badges made through ``badge_save``, and buying helpers. The
WebSocket fixtures (``layer``, ``stream_setup``, ``session_key``) are the streams tests'."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.loyalty.badges import badge_save
from apps.orders.services import order_place, request_fingerprint
from apps.streams.models import FlashDeal, Stream
from apps.streams.services import deal_open, pin_add, stream_start
from creatorcommerce.spine.models import OutboxEvent
from creatorcommerce.spine.tasks import apply_handler
from tests.factories import CreatorFactory, make_buyer, make_sku
from tests.streams.conftest import _empty_local_cache, layer, session_key, stream_setup  # noqa: F401

ON_ORDER = "apps.loyalty.handlers.badges_on_order_placed"
ON_DEAL = "apps.loyalty.handlers.badges_on_deal_opened"
ON_END = "apps.loyalty.handlers.badges_on_stream_ended"

_keys = itertools.count(1)


@pytest.fixture
def creator(db):
    return CreatorFactory()


@pytest.fixture
def shop(creator):
    """The creator's shop, selling ``TEE`` (20.00, 500 units)."""
    make_sku(creator.shop, code="TEE", price="20.00", stock=500)
    return creator.shop


@pytest.fixture
def sku(shop):
    return shop.products.get(skus__code="TEE").skus.get()


@pytest.fixture
def make_drop(shop, sku):
    """``make_drop(starts_at=...)`` -> a live stream of the shop with ``sku`` pinned."""

    def _make(*, starts_at=None, live=True, title="Drop"):
        stream = Stream.objects.create(shop=shop, title=title, starts_at=starts_at or timezone.now())
        pin_add(stream=stream, sku=sku)
        return stream_start(stream=stream) if live else stream

    return _make


@pytest.fixture
def drop(make_drop):
    return make_drop()


@pytest.fixture
def deal(drop, shop):
    """An open flash deal on its own SKU in ``drop`` (50 units at 5.00)."""
    deal_sku = make_sku(shop, code="DEAL", price="9.00", stock=100)
    pin_add(stream=drop, sku=deal_sku)
    now = timezone.now()
    deal = FlashDeal.objects.create(
        stream=drop, sku=deal_sku, price="5.00", quantity=50, opens_at=now, closes_at=now + timedelta(hours=1)
    )
    return deal_open(deal=deal)


@pytest.fixture
def buyers(db):
    return [make_buyer(display_name=f"Fan {i}") for i in range(3)]


@pytest.fixture
def make_badge(shop):
    def _make(rule, **fields):
        fields.setdefault("name", f"{rule} badge")
        return badge_save(shop=shop, badge=None, rule=rule, **fields)

    return _make


def buy(buyer, *, sku="TEE", stream=None, shop=None, now=None):
    """One-tap buy of one unit; returns the order (asserting it was created)."""
    key = f"loyalty-{next(_keys)}"
    where = {"stream_id": stream.pk} if stream is not None else {"shop_slug": shop.slug}
    outcome = order_place(
        buyer=buyer,
        sku_code=sku,
        idempotency_key=key,
        fingerprint=request_fingerprint({"sku": sku, "key": key, **where}),
        now=now,
        **where,
    )
    assert outcome.status == 201, outcome.body
    return outcome.order


def placed_event(order) -> OutboxEvent:
    return OutboxEvent.objects.get(type="order.placed", payload__order=order.pk)


def handle(event_type: str, name: str, **match) -> list[str]:
    """Apply the loyalty handler ``name`` to every recorded event of ``event_type`` whose
    payload has ``match`` (what the spine's worker does; inside a test transaction the
    on-commit delivery never runs). Returns the outcomes ("applied" / "duplicate")."""
    lookups = {f"payload__{k}": v for k, v in match.items()}
    events = OutboxEvent.objects.filter(type=event_type, **lookups).order_by("pk")
    return [apply_handler(event.pk, name) for event in events]
