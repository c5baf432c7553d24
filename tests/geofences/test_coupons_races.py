"""Coupons under real concurrency (PostgreSQL): single use, the cap, issuing once; and
what a coupon costs the buy in statements. Each thread has its own connection."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.catalog.models import StockLevel
from apps.geofences.coupons import coupons_issue
from apps.geofences.models import Coupon, GeoOffer
from apps.orders.models import Order
from tests.factories import make_buyer, make_sku
from tests.helpers import run_concurrently

from .coupon_helpers import T0, coupon_buy, issue, make_offer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOW = T0 + timedelta(minutes=3, seconds=10)


def buy(buyer, lines, coupon, now):
    return coupon_buy(buyer, lines, coupon=coupon, now=now)


def test_twenty_concurrent_buys_with_one_coupon_make_one_discounted_order():
    buyer, sku = make_buyer(), make_sku(price="10.00", stock=100)
    coupon = issue(buyer, make_offer(sku.shop))
    results = run_concurrently(buy, [(buyer, [(sku.code, 1)], coupon.code, NOW) for _ in range(20)])
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 1, results
    assert [body["code"] for status, body in results if status != 201] == ["coupon_used"] * 19
    (order,) = Order.objects.filter(buyer=buyer)
    assert order.total == Decimal("8.15")  # 18.5 % off at minute 3
    assert order.redemptions == [f"coupon:{coupon.pk}"]
    assert StockLevel.objects.get(sku=sku).available == 99  # nothing else was taken
    assert Coupon.objects.get(pk=coupon.pk).redeemed_at == NOW


def test_the_cap_holds_across_many_viewers_coupons():
    sku = make_sku(stock=100)
    offer = make_offer(sku.shop, cap=3)
    viewers = [make_buyer() for _ in range(12)]
    coupons = [issue(v, offer) for v in viewers]
    results = run_concurrently(buy, [(v, [(sku.code, 1)], c.code, NOW) for v, c in zip(viewers, coupons, strict=True)])
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 3, results
    assert {body["code"] for status, body in results if status != 201} == {"coupon_cap_reached"}
    assert GeoOffer.objects.get(pk=offer.pk).redemptions_left == 0
    assert Coupon.objects.filter(offer=offer, redeemed_at__isnull=False).count() == 3
    assert StockLevel.objects.get(sku=sku).available == 97


def test_issuing_twice_at_once_issues_one_coupon():
    sku = make_sku()
    offer = make_offer(sku.shop)
    viewer = make_buyer()
    results = run_concurrently(
        lambda: coupons_issue(user=viewer, venue_id=offer.venue_id, trigger="enter", now=T0), [() for _ in range(8)]
    )
    assert sum(len(r) for r in results) == 1
    assert Coupon.objects.filter(user=viewer, offer=offer).count() == 1


def _statements(buyer, sku, key, coupon=None) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        status, body = coupon_buy(buyer, [(sku.code, 1)], coupon=coupon, now=NOW, key=key)
        assert status == 201, body
    return [q["sql"] for q in ctx.captured_queries]


@pytest.mark.parametrize("capped", [False, True], ids=["no-cap", "capped"])
def test_a_coupon_adds_at_most_one_statement_to_the_buy(monkeypatch, capped):
    """Measured on PostgreSQL: a one-line buy is SELECT (the buy's read), WITH (the
    reserve), WITH (the confirm); with a coupon the provider's read of the coupon is the one
    more, and its counters ride in the reserve's statement (no BEGIN/COMMIT either)."""
    from creatorcommerce.spine import events

    monkeypatch.setattr(events, "enqueue_handlers", lambda event: None)
    buyer, sku = make_buyer(), make_sku(stock=50)
    coupon = issue(buyer, make_offer(sku.shop, cap=5 if capped else None))
    _statements(buyer, sku, "warm-up-key-1")  # first use creates the node's signing key
    plain = _statements(buyer, sku, "counted-plain-1")
    with_coupon = _statements(buyer, sku, "counted-coupon-1", coupon=coupon.code)
    print(f"\nstatements: without a coupon {len(plain)}, with one {len(with_coupon)}")
    assert [s.split()[0] for s in plain] == ["SELECT", "WITH", "WITH"], "\n".join(plain)
    assert [s.split()[0] for s in with_coupon] == ["SELECT", "SELECT", "WITH", "WITH"], "\n".join(with_coupon)
    assert len(with_coupon) <= len(plain) + 1
    assert Coupon.objects.get(pk=coupon.pk).redeemed_at == NOW
