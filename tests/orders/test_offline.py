"""Offline selling on an edge node (docs/buying.md, "Offline selling"): with the gateway
unreachable, buys up to OFFLINE_FLOOR_LIMIT are accepted (sold, receipt signed by the node)
and paid later exactly once; larger ones are refused with nothing sold; a payment refused
later flags the order for the creator. The cloud role is unchanged."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.catalog.models import StockLevel
from apps.orders import payments
from apps.orders.exceptions import OrderCapturePending
from apps.orders.models import Order
from apps.orders.payments import TestGateway
from apps.orders.services import (
    order_capture_offline,
    order_place,
    order_refund,
    orders_capture_offline,
    payment_reference,
    request_fingerprint,
)
from apps.orders.tasks import capture_offline_orders
from creatorcommerce.signing.selectors import receipt_verify
from tests.factories import make_buyer, make_sku
from tests.helpers import events_since, last_event_id, run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LATER = timedelta(days=1)  # "now" for a sweep that finds every backed-off try due


@pytest.fixture
def ledger(monkeypatch):
    """A fresh TestGateway ledger and tables per test."""
    for name in ("_authorizations", "_authorization_of_reference", "_captures", "_voided", "_refunds"):
        monkeypatch.setattr(TestGateway, name, {})
    monkeypatch.setattr(TestGateway, "ledger", [])
    return TestGateway.ledger


@pytest.fixture
def outage(settings, tmp_path, ledger):
    """The TestGateway's outage switch (TEST_GATEWAY_DOWN_FILE), on; ``outage.end()`` ends it."""
    settings.TEST_GATEWAY_DOWN_FILE = str(tmp_path / "gateway-down")

    class Outage:
        def start(self):
            call_command("test_gateway", "down", stdout=_Null())

        def end(self):
            call_command("test_gateway", "up", stdout=_Null())

    switch = Outage()
    switch.start()
    return switch


@pytest.fixture
def edge(settings, outage):
    settings.NODE_ROLE = "edge"
    settings.NODE_ID = "edge-venue-1"
    settings.OFFLINE_FLOOR_LIMIT = Decimal("50.00")
    return outage


class _Null:
    def write(self, *_):
        pass


def buy(buyer, sku, quantity=1, key="offline-key-1"):
    body = {"sku": sku.code, "quantity": quantity}
    return order_place(
        buyer=buyer, sku_code=sku.code, quantity=quantity, idempotency_key=key, fingerprint=request_fingerprint(body)
    )


def available(sku):
    return StockLevel.objects.get(sku=sku).available


def authorizations(reference):
    return [auth for ref, auth in TestGateway._authorization_of_reference.items() if ref == reference]


def test_the_outage_switch_makes_the_test_gateway_unreachable(settings, outage):
    gateway = TestGateway()
    with pytest.raises(ConnectionError):
        gateway.authorize(token="tok_ok", amount=Decimal("1"), currency="USD", reference="switch-1")
    assert payments.test_gateway_down()
    outage.end()
    assert not payments.test_gateway_down()
    assert gateway.authorize(token="tok_ok", amount=Decimal("1"), currency="USD", reference="switch-1")


def test_on_the_cloud_an_unreachable_gateway_still_refuses_and_gives_everything_back(settings, outage):
    assert settings.NODE_ROLE == "cloud"
    sku = make_sku(stock=5, price="10.00")
    outcome = buy(make_buyer(), sku)
    assert outcome.status == 503 and outcome.body["code"] == "payment_gateway_unavailable"
    assert available(sku) == 5
    assert Order.objects.get().status == Order.Status.FAILED


def test_over_the_floor_limit_is_refused_with_the_limit_and_nothing_sold(edge):
    sku = make_sku(stock=5, price="30.00")
    buyer = make_buyer()
    mark = last_event_id()
    outcome = buy(buyer, sku, quantity=2)  # 60.00 > 50.00
    assert outcome.status == 503
    assert outcome.body["code"] == "offline_over_floor_limit"
    assert (outcome.body["limit"], outcome.body["currency"]) == ("50.00", "USD")
    assert "50.00 USD" in outcome.body["message"]
    assert available(sku) == 5
    order = Order.objects.get()
    assert order.status == Order.Status.FAILED and not order.receipt
    assert [e.type for e in events_since(mark, "order.accepted_offline", "order.placed")] == []
    # The key stays free, as after any gateway failure: once the gateway answers, it buys.
    edge.end()
    assert buy(buyer, sku, quantity=2).status == 201
    assert available(sku) == 3


def test_under_the_limit_it_is_accepted_offline_sold_and_signed_by_the_node(edge):
    sku = make_sku(stock=5, price="20.00")
    buyer = make_buyer()
    mark = last_event_id()
    outcome = buy(buyer, sku, quantity=2)  # 40.00 <= 50.00
    assert outcome.status == 201, outcome.body
    body = outcome.body
    assert body["status"] == "accepted_offline"
    assert body["offline"]["capture"] == "pending" and body["offline"]["accepted_at"]
    assert available(sku) == 3  # the units stay sold
    claims = receipt_verify(token=body["receipt"])
    assert claims["order"] == body["id"] and claims["total"] == "40.00"
    assert claims["node"] == "edge-venue-1" and claims["offline"] is True
    order = Order.objects.get(pk=body["id"])
    assert order.payment_status == Order.PaymentStatus.PENDING and order.paid_at is None
    assert order.capture_next_at > order.offline_accepted_at
    types = [e.type for e in events_since(mark, "stock.changed", "order.accepted_offline", "order.placed")]
    assert types == ["stock.changed", "order.accepted_offline"]  # order.placed waits for the payment
    replay = buy(buyer, sku, quantity=2)
    assert replay.replayed and (replay.status, replay.body) == (201, body)
    assert TestGateway.ledger == []


def test_exactly_at_the_limit_is_accepted(edge):
    outcome = buy(make_buyer(), make_sku(stock=5, price="50.00"))
    assert outcome.status == 201 and outcome.body["status"] == "accepted_offline"


def test_a_zero_limit_turns_offline_selling_off(edge, settings):
    settings.OFFLINE_FLOOR_LIMIT = Decimal("0")
    outcome = buy(make_buyer(), make_sku(stock=5, price="1.00"))
    assert outcome.status == 503 and outcome.body["code"] == "offline_over_floor_limit"


def test_captured_later_exactly_once_with_backoff_while_down(edge):
    sku = make_sku(stock=5, price="12.00")
    buyer = make_buyer()
    order_id = buy(buyer, sku).body["id"]
    now = timezone.now() + LATER
    # Still down: the try fails, is counted and backed off (doubling), nothing changes.
    assert orders_capture_offline(now=now) == {"paid": 0, "declined": 0, "retry": 1, "skipped": 0}
    order = Order.objects.get(pk=order_id)
    assert order.status == Order.Status.ACCEPTED_OFFLINE and order.capture_attempts == 1
    assert order.capture_next_at == now + timedelta(seconds=60) and "unreachable" in order.capture_error
    assert orders_capture_offline(now=now) == {"paid": 0, "declined": 0, "retry": 0, "skipped": 0}  # not due
    assert orders_capture_offline(now=now + timedelta(seconds=60))["retry"] == 1
    assert Order.objects.get(pk=order_id).capture_next_at == now + timedelta(seconds=60 + 120)

    edge.end()
    mark = last_event_id()
    assert capture_offline_orders.apply().result == {"paid": 0, "declined": 0, "retry": 0, "skipped": 0}
    assert orders_capture_offline(now=now + LATER)["paid"] == 1
    order = Order.objects.get(pk=order_id)
    # order.placed's capture handler (eager here) took it: once.
    assert (order.status, order.payment_status) == (Order.Status.PAID, Order.PaymentStatus.CAPTURED)
    assert order.paid_at is not None and order.capture_next_at is None and order.capture_error == ""
    assert [e.type for e in events_since(mark, "order.placed")] == ["order.placed"]
    assert authorizations(payment_reference(order)) == [order.payment_reference]
    assert TestGateway.captures_of(order.payment_reference) == 1
    assert [op for op, _, _ in TestGateway.ledger] == ["authorize", "capture"]
    # Run again: nothing is due, nothing is charged.
    assert orders_capture_offline(now=now + 2 * LATER)["paid"] == 0
    assert order_capture_offline(order_id=order_id) == "skipped"
    assert [op for op, _, _ in TestGateway.ledger] == ["authorize", "capture"]
    assert available(sku) == 4


def test_two_captures_at_once_charge_once(edge):
    order_id = buy(make_buyer(), make_sku(stock=5, price="9.00")).body["id"]
    edge.end()
    mark = last_event_id()
    outcomes = run_concurrently(lambda pk: order_capture_offline(order_id=pk), [(order_id,)] * 4, workers=4)
    assert sorted(outcomes) == ["paid", "skipped", "skipped", "skipped"]
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.payment_status) == (Order.Status.PAID, Order.PaymentStatus.CAPTURED)
    assert [op for op, _, _ in TestGateway.ledger].count("authorize") == 1
    assert TestGateway.captures_of(order.payment_reference) == 1
    assert [e.type for e in events_since(mark, "order.placed")] == ["order.placed"]


def test_a_retry_after_a_lost_answer_charges_once(edge, monkeypatch):
    order_id = buy(make_buyer(), make_sku(stock=5, price="9.00")).body["id"]
    edge.end()
    real = TestGateway.authorize
    lost = []

    def answer_lost(self, **kwargs):
        auth = real(self, **kwargs)  # the gateway placed the hold...
        if not lost:
            lost.append(auth)
            raise TimeoutError("read timed out")  # ...but its answer never arrived
        return auth

    monkeypatch.setattr(TestGateway, "authorize", answer_lost)
    assert order_capture_offline(order_id=order_id) == "retry"
    assert Order.objects.get(pk=order_id).status == Order.Status.ACCEPTED_OFFLINE
    assert order_capture_offline(order_id=order_id) == "paid"
    order = Order.objects.get(pk=order_id)
    assert order.payment_reference == lost[0]  # the first attempt's hold, found again
    assert [op for op, _, _ in TestGateway.ledger] == ["authorize", "capture"]
    assert order.payment_status == Order.PaymentStatus.CAPTURED


def test_declined_later_flags_the_order_keeps_it_sold_and_the_creator_decides(edge, client):
    sku = make_sku(stock=5, price="15.00")
    buyer = make_buyer(token="tok_declined")
    order_id = buy(buyer, sku).body["id"]
    edge.end()
    mark = last_event_id()
    assert orders_capture_offline(now=timezone.now() + LATER)["declined"] == 1
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.payment_status) == (Order.Status.CAPTURE_DECLINED, Order.PaymentStatus.DECLINED)
    assert available(sku) == 4  # still sold: the creator decides
    (event,) = events_since(mark, "order.capture_declined")
    assert event.payload["order"] == order_id and event.payload["total"] == "15.00"
    assert event.groups == [f"shop.{order.shop_id}"]
    assert not events_since(mark, "order.placed")
    (entry,) = AuditEntry.objects.filter(action="order.capture_declined")
    assert entry.object_id == str(order_id) and entry.shop_id == order.shop_id and entry.actor is None
    assert "declined" in entry.reason
    assert order_capture_offline(order_id=order_id) == "skipped"  # flagged once
    assert AuditEntry.objects.filter(action="order.capture_declined").count() == 1

    client.force_login(buyer)
    body = client.get(f"/api/v1/orders/{order_id}/").json()
    assert body["status"] == "capture_declined" and body["offline"]["capture"] == "declined"
    assert "Your card was declined" in client.get(f"/orders/{order_id}/").content.decode()

    # The creator closes it, putting the units back: nothing goes to the gateway.
    before = list(TestGateway.ledger)
    closed = order_refund(order=order, actor=order.shop.owner, restock=True, reason="card refused later")
    assert closed.status == Order.Status.REFUNDED and closed.payment_status == Order.PaymentStatus.DECLINED
    assert available(sku) == 5 and TestGateway.ledger == before


def test_an_order_awaiting_its_payment_cannot_be_refunded_yet(edge):
    order_id = buy(make_buyer(), make_sku(stock=5, price="5.00")).body["id"]
    order = Order.objects.select_related("shop").get(pk=order_id)
    with pytest.raises(OrderCapturePending):
        order_refund(order=order, actor=order.shop.owner, restock=True, reason="changed mind")


def test_the_api_and_pages_tell_the_buyer_pending_then_captured(edge, client):
    buyer = make_buyer()
    order_id = buy(buyer, make_sku(stock=5, price="8.00")).body["id"]
    client.force_login(buyer)
    body = client.get(f"/api/v1/orders/{order_id}/").json()
    assert body["status"] == "accepted_offline" and body["offline"]["capture"] == "pending"
    page = client.get(f"/orders/{order_id}/").content.decode()
    assert "Accepted offline" in page and "Capture is pending" in page and "signed" in page
    listing = client.get("/orders/").content.decode()
    assert "receipt signed · capture pending" in listing

    edge.end()
    assert order_capture_offline(order_id=order_id) == "paid"
    body = client.get(f"/api/v1/orders/{order_id}/").json()
    assert body["status"] == "paid" and body["offline"]["capture"] == "captured"
    page = client.get(f"/orders/{order_id}/").content.decode()
    assert "Payment captured" in page and "Capture is pending" not in page
    assert "capture pending" not in client.get("/orders/").content.decode()


def test_orders_bought_online_keep_their_shape(settings, ledger):
    settings.NODE_ROLE = "edge"
    outcome = buy(make_buyer(), make_sku(stock=5, price="8.00"))
    assert outcome.status == 201 and outcome.body["status"] == "paid" and "offline" not in outcome.body
    assert "offline" not in receipt_verify(token=outcome.body["receipt"])


def test_the_api_answers_the_refusal_as_json(edge, client):
    buyer = make_buyer()
    sku = make_sku(stock=5, price="80.00")
    client.force_login(buyer)
    response = client.post(
        "/api/v1/orders/", {"sku": sku.code, "quantity": 1}, content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="api-offline-1",
    )  # fmt: skip
    assert response.status_code == 503
    assert response.json()["code"] == "offline_over_floor_limit" and response.json()["limit"] == "50.00"
    cheap = make_sku(stock=5, price="3.00")
    response = client.post(
        "/api/v1/orders/", {"sku": cheap.code, "quantity": 1}, content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="api-offline-2",
    )  # fmt: skip
    assert response.status_code == 201 and response.json()["status"] == "accepted_offline"


def test_the_offline_receipt_verifies_from_the_nodes_jwks_with_pyjwt_and_joserfc(edge, client):
    import json
    import warnings

    import jwt
    from joserfc import jws
    from joserfc.jwk import KeySet

    token = buy(make_buyer(), make_sku(stock=5, price="7.00")).body["receipt"]
    published = client.get("/.well-known/jwks.json").json()
    key_set = jwt.PyJWKSet.from_dict(published)
    claims = jwt.decode(token, key=key_set[jwt.get_unverified_header(token)["kid"]], algorithms=["EdDSA"])
    assert claims["offline"] is True and claims["node"] == "edge-venue-1"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc calls EdDSA deprecated (docs/receipts.md)
        obj = jws.deserialize_compact(token, KeySet.import_key_set(published), algorithms=["EdDSA"])
    assert json.loads(obj.payload)["order"] == claims["order"]


def test_the_admin_flags_a_declined_capture_and_the_creator_closes_it(edge, client):
    sku = make_sku(stock=5, price="15.00")
    order_id = buy(make_buyer(token="tok_declined"), sku).body["id"]
    owner = sku.shop.owner
    client.force_login(owner)
    page = client.get(f"/admin/orders/order/{order_id}/change/").content.decode()
    assert "Accepted offline" in page and "capture pending" in page.lower()
    assert f"/admin/orders/order/{order_id}/refund/" not in page  # not paid yet: nothing to refund
    edge.end()
    assert order_capture_offline(order_id=order_id) == "declined"

    listing = client.get("/admin/orders/order/?status__exact=capture_declined").content.decode()
    assert f"/admin/orders/order/{order_id}/change/" in listing
    page = client.get(f"/admin/orders/order/{order_id}/change/").content.decode()
    assert "payment was declined later" in page and "Close…" in page
    confirm = client.get(f"/admin/orders/order/{order_id}/refund/").content.decode()
    assert "nothing was charged" in confirm and "Close the order" in confirm
    done = client.post(
        f"/admin/orders/order/{order_id}/refund/", {"restock": "no", "reason": "Buyer paid cash"}, follow=True
    )
    assert "closed (nothing was charged)" in done.content.decode()
    order = Order.objects.get(pk=order_id)
    assert order.status == Order.Status.REFUNDED and available(sku) == 4
    assert list(AuditEntry.objects.filter(object_id=str(order_id)).values_list("action", flat=True).order_by("pk")) == [
        "order.capture_declined",
        "order.refunded",
    ]
