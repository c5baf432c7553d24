"""The exact events the orders' services send (docs/events.md): type, payload and groups,
each checked against its declared schema by ``captured_events``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.orders.models import Order
from apps.orders.payments import TestGateway
from apps.orders.services import (
    address_set,
    order_place,
    order_refund,
    orders_release_expired,
    payment_method_add,
    request_fingerprint,
)
from tests.factories import StaffFactory, UserFactory, make_buyer, make_sku
from tests.helpers import captured_events, expected_stock_changed

pytestmark = pytest.mark.django_db(transaction=True)


def _buy(buyer, sku, quantity, key):
    return order_place(
        buyer=buyer,
        sku_code=sku.code,
        quantity=quantity,
        idempotency_key=key,
        fingerprint=request_fingerprint({"sku": sku.code, "quantity": quantity}),
    )


def test_a_paid_buy_sends_the_new_count_then_order_placed_then_order_captured():
    sku = make_sku(stock=5, price="12.50")
    buyer = make_buyer()
    with captured_events() as events:
        outcome = _buy(buyer, sku, 2, "events-buy-1")
    assert outcome.status == 201
    order = outcome.order
    assert events == [
        expected_stock_changed(sku, 3),
        (
            "order.placed",
            {
                "order": order.pk,
                "shop": sku.shop_id,
                "stream": None,
                "buyer": buyer.pk,
                "buyer_name": buyer.display_name,
                "subtotal": "25.00",
                "total": "25.00",
                "currency": "USD",
                "lines": [
                    {
                        "sku": sku.code,
                        "sku_id": sku.pk,
                        "quantity": 2,
                        "unit_price": "12.50",
                        "adjustments": [],
                        "total": "25.00",
                    }
                ],
            },
            [f"shop.{sku.shop_id}"],
        ),
        # The capture handler (run here, eagerly, after the commit) says it took the payment.
        ("order.captured", {"order": order.pk, "shop": sku.shop_id}, [f"shop.{sku.shop_id}"]),
    ]


def test_a_buyer_without_a_display_name_is_null_in_order_placed():
    sku = make_sku(stock=5, price="3.00")
    buyer = make_buyer(display_name="")
    with captured_events() as events:
        _buy(buyer, sku, 1, "events-anon-1")
    (placed,) = events.of("order.placed")
    assert placed[1]["buyer_name"] is None


def test_a_declined_buy_sends_the_units_back_then_order_declined():
    sku = make_sku(stock=5)
    buyer = make_buyer(token="tok_declined")
    with captured_events() as events:
        outcome = _buy(buyer, sku, 2, "events-declined-1")
    order = Order.objects.get(buyer=buyer)
    assert order.status == Order.Status.DECLINED and outcome.status != 201
    assert events == [
        expected_stock_changed(sku, 5),
        ("order.declined", {"order": order.pk, "shop": sku.shop_id}, [f"shop.{sku.shop_id}"]),
    ]


def test_a_gateway_failure_sends_the_units_back_then_order_failed(monkeypatch):
    def unreachable(self, **kwargs):
        raise ConnectionError("gateway down")

    monkeypatch.setattr(TestGateway, "authorize", unreachable)
    sku = make_sku(stock=5)
    buyer = make_buyer()
    with captured_events() as events:
        _buy(buyer, sku, 1, "events-failed-1")
    order = Order.objects.get(buyer=buyer)
    assert events == [
        expected_stock_changed(sku, 5),
        ("order.failed", {"order": order.pk, "shop": sku.shop_id}, [f"shop.{sku.shop_id}"]),
    ]


def test_an_expired_reservation_sends_the_units_back_then_order_expired(monkeypatch):
    """The sweeper releases a reservation while its payment is being authorised: the
    release's events and nothing of the buy (it is voided, not confirmed)."""
    authorize = TestGateway.authorize

    def slow(self, **kwargs):
        assert orders_release_expired(ttl_seconds=0, now=timezone.now() + timedelta(seconds=1)) == 1
        return authorize(self, **kwargs)

    monkeypatch.setattr(TestGateway, "authorize", slow)
    sku = make_sku(stock=5)
    buyer = make_buyer()
    with captured_events() as events:
        _buy(buyer, sku, 2, "events-expired-1")
    order = Order.objects.get(buyer=buyer)
    assert order.status == Order.Status.EXPIRED
    assert events == [
        expected_stock_changed(sku, 5),
        ("order.expired", {"order": order.pk, "shop": sku.shop_id}, [f"shop.{sku.shop_id}"]),
    ]


@pytest.mark.parametrize("restock", [True, False])
def test_a_refund_sends_order_refunded_after_the_units_it_put_back(restock):
    sku = make_sku(stock=10, price="20.00")
    order = _buy(make_buyer(), sku, 2, "events-refund-1").order
    with captured_events() as events:
        order_refund(order=order, actor=StaffFactory(), restock=restock, reason="Parcel lost")
    refunded = (
        "order.refunded",
        {
            "order": order.pk,
            "shop": sku.shop_id,
            "total": "40.00",
            "currency": "USD",
            "restocked": restock,
            "lines": [{"sku": sku.code, "sku_id": sku.pk, "quantity": 2}],
        },
        [f"shop.{sku.shop_id}"],
    )
    assert events == ([expected_stock_changed(sku, 10)] if restock else []) + [refunded]


def test_checkout_details_send_payment_method_added_and_address_updated():
    user = UserFactory()
    with captured_events() as events:
        method = payment_method_add(user=user, token="tok_ok")
        address_set(user=user, name="Ada", line1="1 Main St", city="Berlin", postal_code="10115", country="DE")
    assert events == [
        ("payment_method.added", {"user": user.pk, "payment_method": method.pk}, []),
        ("address.updated", {"user": user.pk}, []),
    ]
