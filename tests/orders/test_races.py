"""Invariants under real concurrency (PostgreSQL): never oversell, limits and idempotency
hold when many requests arrive at once. Each thread has its own database connection."""

from __future__ import annotations

import itertools
import random

import pytest
from django.db.models import Sum
from django.test import Client

from apps.catalog.models import StockLevel
from apps.orders.models import Order, OrderLine
from apps.orders.services import order_place, request_fingerprint
from tests.factories import make_buyer, make_sku
from tests.helpers import run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

_keys = itertools.count()


def service_buy(buyer, sku_code, quantity, key=None):
    key = key or f"race-{next(_keys):06d}"
    body = {"sku": sku_code, "quantity": quantity}
    outcome = order_place(
        buyer=buyer, sku_code=sku_code, quantity=quantity, idempotency_key=key, fingerprint=request_fingerprint(body)
    )
    return outcome.status, outcome.body


def http_buy(buyer, sku_code, quantity, key=None):
    client = Client()
    client.force_login(buyer)
    key = key or f"race-{next(_keys):06d}"
    response = client.post(
        "/api/v1/orders/",
        {"sku": sku_code, "quantity": quantity},
        content_type="application/json",
        headers={"Idempotency-Key": key},
    )
    return response.status_code, response.json()


def assert_conserved(sku, initial):
    level = StockLevel.objects.get(sku=sku)
    sold = OrderLine.objects.filter(sku=sku, order__status=Order.Status.PAID).aggregate(n=Sum("quantity"))["n"] or 0
    assert level.available >= 0
    assert sold + level.available == initial
    # No order holds units that were not taken: every order is paid (none stuck reserved).
    assert not Order.objects.exclude(status=Order.Status.PAID).exists()
    return sold, level.available


@pytest.fixture
def buyers():
    return [make_buyer() for _ in range(50)]


@pytest.mark.parametrize("path", [service_buy, http_buy], ids=["service", "http"])
def test_stock_never_negative_single_units(buyers, path, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"buy": "100000/min"}}
    sku = make_sku(stock=20)
    attempts = [(buyers[i % len(buyers)], sku.code, 1) for i in range(200)]
    results = run_concurrently(path, attempts)
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 20
    assert statuses.count(409) == 180
    assert all(body["code"] == "sold_out" for status, body in results if status == 409)
    assert assert_conserved(sku, 20) == (20, 0)
    assert Order.objects.count() == 20


@pytest.mark.parametrize("path", [service_buy, http_buy], ids=["service", "http"])
def test_stock_never_negative_mixed_quantities(buyers, path, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"buy": "100000/min"}}
    sku = make_sku(stock=20)
    rng = random.Random(7)
    attempts = [(buyers[i % len(buyers)], sku.code, rng.randint(1, 3)) for i in range(200)]
    results = run_concurrently(path, attempts)
    sold, left = assert_conserved(sku, 20)
    won = sum(q for (_, _, q), (status, _) in zip(attempts, results, strict=True) if status == 201)
    assert won == sold
    assert left < 3  # with 200 attempts the counter runs out; what is left is less than a 3-pack
    assert {status for status, _ in results} <= {201, 409}


def test_per_buyer_limit_holds_under_concurrency():
    sku = make_sku(stock=100, per_buyer_limit=2)
    buyer = make_buyer()
    results = run_concurrently(service_buy, [(buyer, sku.code, 1) for _ in range(20)])
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 2
    assert all(body["code"] == "buyer_limit_exceeded" for status, body in results if status == 409)
    assert StockLevel.objects.get(sku=sku).available == 98


def test_one_key_many_parallel_requests_make_one_order(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"buy": "100000/min"}}
    sku = make_sku(stock=100)
    buyer = make_buyer()
    results = run_concurrently(http_buy, [(buyer, sku.code, 1, "one-key-for-all") for _ in range(20)])
    assert Order.objects.filter(buyer=buyer).count() == 1
    assert StockLevel.objects.get(sku=sku).available == 99
    order_id = Order.objects.get(buyer=buyer).pk
    for status, body in results:
        assert (status == 201 and body["id"] == order_id) or (
            status == 409 and body["code"] == "idempotency_key_in_flight"
        )
    # Once done, every retry answers the first response.
    assert http_buy(buyer, sku.code, 1, "one-key-for-all") == (201, results[[s for s, _ in results].index(201)][1])


def test_concurrent_refunds_refund_once_restock_once_and_audit_once():
    """Staff and the creator press "Refund" at the same moment, several times: the gateway
    refunds once, the stock comes back once, one order.refunded and one audit entry."""
    from apps.audit.models import AuditEntry
    from apps.orders.exceptions import OrderAlreadyRefunded
    from apps.orders.payments import TestGateway
    from apps.orders.services import order_refund
    from creatorcommerce.spine.models import OutboxEvent
    from tests.factories import StaffFactory

    sku = make_sku(stock=10)
    status, body = service_buy(make_buyer(), sku.code, 3)
    assert status == 201
    order = Order.objects.get(pk=body["id"])
    actors = [StaffFactory(), sku.shop.owner] * 4

    def refund(actor):
        try:
            order_refund(order=order, actor=actor, restock=True, reason="pressed twice")
            return "refunded"
        except OrderAlreadyRefunded:
            return "already"

    results = run_concurrently(refund, [(a,) for a in actors], workers=8)

    assert sorted(results) == ["already"] * 7 + ["refunded"]
    assert StockLevel.objects.get(sku=sku).available == 10
    assert TestGateway.refunds_of(Order.objects.get(pk=order.pk).capture_reference) == 1
    assert OutboxEvent.objects.filter(type="order.refunded").count() == 1
    assert AuditEntry.objects.filter(object_id=str(order.pk)).count() == 1
