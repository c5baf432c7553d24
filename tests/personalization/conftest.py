"""Fixtures of the personalisation tests: a shop selling five SKUs, buyers, and ``buy`` (a
real ``order_place``, dated back when asked, as tests/loyalty/test_retention.py does)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.orders.models import Order
from apps.orders.services import order_place, request_fingerprint
from apps.personalization.model_cache import model_cache
from tests.factories import CreatorFactory, make_buyer, make_sku

CODES = ["A", "B", "C", "D", "E"]
_keys = itertools.count(1)


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    """Each test starts with no model loaded in this process (the database is rolled back)."""
    model_cache.drop()
    yield
    model_cache.drop()


@pytest.fixture
def shop(db):
    shop = CreatorFactory().shop
    for code in CODES:
        make_sku(shop, code=code, price="5.00", stock=1000)
    return shop


@pytest.fixture
def buyers(db):
    return [make_buyer(display_name=f"Buyer {i}") for i in range(8)]


def buy(buyer, shop, *codes: str, days_ago: float = 0) -> Order:
    lines = [(code, 1) for code in codes]
    outcome = order_place(
        buyer=buyer,
        lines=lines,
        shop_slug=shop.slug,
        idempotency_key=f"pers-{next(_keys)}",
        fingerprint=request_fingerprint({"lines": lines}),
    )
    assert outcome.order is not None and outcome.order.status == Order.Status.PAID, outcome.body
    if days_ago:
        at = timezone.now() - timedelta(days=days_ago)
        Order.objects.filter(pk=outcome.order.pk).update(created_at=at, paid_at=at)
    return outcome.order
