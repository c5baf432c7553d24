"""The buy service: reserve, authorise, confirm; declines, expiry, capture, idempotency."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.catalog.models import BuyerAllowance, StockLevel
from apps.orders.models import IdempotencyRecord, Order
from apps.orders.payments import TestGateway
from apps.orders.services import order_place, orders_release_expired, request_fingerprint
from apps.orders.tasks import prune_idempotency_keys
from creatorcommerce.signing.selectors import receipt_verify
from creatorcommerce.spine.models import OutboxEvent
from tests.factories import UserFactory, make_buyer, make_sku

pytestmark = pytest.mark.django_db(transaction=True)


def buy(buyer, sku, quantity=1, key=None, **extra):
    body = {"sku": sku.code, "quantity": quantity, **extra}
    return order_place(
        buyer=buyer,
        sku_code=sku.code,
        quantity=quantity,
        idempotency_key=key or f"key-{buyer.pk}-{id(body)}",
        fingerprint=request_fingerprint(body),
    )


def available(sku):
    return StockLevel.objects.get(sku=sku).available


def test_buy_takes_stock_signs_receipt_and_emits_events():
    sku = make_sku(stock=5, price="12.50")
    buyer = make_buyer()
    outcome = buy(buyer, sku, quantity=2, key="first-buy-1")
    assert outcome.status == 201, outcome.body
    body = outcome.body
    assert body["status"] == "paid"
    assert body["total"] == "25.00" and body["currency"] == "USD"
    assert body["lines"] == [
        {
            "sku": sku.code,
            "title": sku.display_title,
            "quantity": 2,
            "unit_price": "12.50",
            "adjustments": [],
            "total": "25.00",
        }
    ]
    assert (body["subtotal"], body["discount"], body["total"]) == ("25.00", "0.00", "25.00")
    assert available(sku) == 3
    claims = receipt_verify(token=body["receipt"])
    assert claims["order"] == body["id"] and claims["total"] == "25.00" and claims["buyer"] == buyer.pk
    types = list(OutboxEvent.objects.filter(type__in=["stock.changed", "order.placed"]).values_list("type", flat=True))
    assert types[-2:] == ["stock.changed", "order.placed"]
    order = Order.objects.get(pk=body["id"])
    # order.placed is handled by capture_payment (eager here): captured exactly once.
    assert order.payment_status == Order.PaymentStatus.CAPTURED
    assert TestGateway.captures_of(order.payment_reference) == 1


def test_sold_out_is_409_and_nothing_is_written():
    sku = make_sku(stock=1)
    buyer = make_buyer()
    assert buy(buyer, sku, quantity=2, key="too-many-1").status == 409
    outcome = buy(buyer, sku, quantity=2, key="too-many-1")
    assert outcome.status == 409 and outcome.body["code"] == "sold_out" and outcome.replayed
    assert available(sku) == 1
    assert not Order.objects.exists()


def test_decline_gives_stock_back_at_once_and_charges_nothing():
    sku = make_sku(stock=3, per_buyer_limit=2)
    buyer = make_buyer(token="tok_declined")
    before = len(TestGateway.ledger)
    outcome = buy(buyer, sku, quantity=2, key="declined-1")
    assert outcome.status == 402 and outcome.body["code"] == "payment_declined"
    assert available(sku) == 3
    assert BuyerAllowance.objects.get(buyer=buyer, key=f"sku:{sku.pk}").units == 0
    assert Order.objects.get().status == Order.Status.DECLINED
    assert not [op for op in TestGateway.ledger[before:] if op[0] == "capture"]
    replay = buy(buyer, sku, quantity=2, key="declined-1")
    assert (replay.status, replay.body) == (outcome.status, outcome.body)


def test_checkout_incomplete_without_payment_method_or_address():
    sku = make_sku(stock=3)
    outcome = buy(UserFactory(), sku, key="no-checkout-1")
    assert outcome.status == 409 and outcome.body["code"] == "checkout_incomplete"
    assert available(sku) == 3


def test_per_buyer_limit_counts_across_orders():
    sku = make_sku(stock=10, per_buyer_limit=2)
    buyer = make_buyer()
    assert buy(buyer, sku, key="limit-a-1").status == 201
    assert buy(buyer, sku, key="limit-b-1").status == 201
    third = buy(buyer, sku, key="limit-c-1")
    assert third.status == 409 and third.body["code"] == "buyer_limit_exceeded"
    assert available(sku) == 8
    assert buy(make_buyer(), sku, quantity=2, key="other-1").status == 201


def test_replay_returns_first_response_and_mismatch_is_422():
    sku = make_sku(stock=5)
    buyer = make_buyer()
    first = buy(buyer, sku, key="same-key-123")
    again = buy(buyer, sku, key="same-key-123")
    assert again.replayed and (again.status, again.body) == (first.status, first.body)
    assert available(sku) == 4
    other = buy(buyer, sku, quantity=2, key="same-key-123")
    assert other.status == 422 and other.body["code"] == "idempotency_key_reused"
    # Keys are per user: another buyer may use the same string.
    assert buy(make_buyer(), sku, key="same-key-123").status == 201


def test_sweeper_releases_abandoned_reservation():
    sku = make_sku(stock=4, per_buyer_limit=3)
    buyer = make_buyer()
    order = _reserve_and_die(buyer, sku, quantity=3)
    assert available(sku) == 1
    assert orders_release_expired() == 0  # not old yet
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    assert orders_release_expired() == 1
    assert available(sku) == 4
    assert BuyerAllowance.objects.get(buyer=buyer, key=f"sku:{sku.pk}").units == 0
    order.refresh_from_db()
    assert order.status == Order.Status.EXPIRED
    assert orders_release_expired() == 0
    # The key of an expired order answers with it (nothing charged), it is not reused.
    assert OutboxEvent.objects.filter(type="order.expired").count() == 1


def test_confirm_after_sweeper_voids_and_charges_nothing(monkeypatch):
    """The process was only slow: the sweeper released its reservation first. Confirming
    must not resurrect it; the authorisation is voided."""
    from apps.orders import services

    sku = make_sku(stock=2)
    buyer = make_buyer()
    real_sign = services.receipt_sign

    def slow_sign(*, payload):
        Order.objects.filter(pk=payload["order"]).update(created_at=timezone.now() - timedelta(hours=1))
        orders_release_expired()
        return real_sign(payload=payload)

    monkeypatch.setattr(services, "receipt_sign", slow_sign)
    outcome = buy(buyer, sku, key="slow-buy-1")
    assert outcome.status == 409 and outcome.body["code"] == "reservation_expired"
    assert available(sku) == 2
    auths = [ref for op, ref, _ in TestGateway.ledger if op == "void"]
    assert auths and TestGateway.captures_of(auths[-1]) == 0


def test_prune_keeps_keys_for_at_least_24_hours():
    sku = make_sku(stock=0)
    buyer = make_buyer()
    buy(buyer, sku, key="old-key-123")
    buy(buyer, sku, key="new-key-123")
    IdempotencyRecord.objects.filter(key="old-key-123").update(created_at=timezone.now() - timedelta(hours=49))
    IdempotencyRecord.objects.filter(key="new-key-123").update(created_at=timezone.now() - timedelta(hours=23))
    assert prune_idempotency_keys() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new-key-123"]


def test_queries_per_buy(monkeypatch):
    """The request path of a buy: one read (buyer and SKU), reserve (stock, order, line),
    confirm (order, both events in one INSERT). On PostgreSQL the reserve and the confirm
    are one statement each, outside any explicit transaction (no BEGIN/COMMIT either).
    Handlers (capture) run later in a worker."""
    from creatorcommerce.spine import events

    sku = make_sku(stock=50)
    buyer = make_buyer()
    buy(buyer, sku, key="warm-up-key")  # first use creates the node's signing key
    deferred = []
    monkeypatch.setattr(events, "enqueue_handlers", deferred.append)
    with CaptureQueriesContext(connection) as ctx:
        assert buy(buyer, sku, key="counted-key-1").status == 201
    statements = [q["sql"] for q in ctx.captured_queries]
    if connection.vendor == "postgresql":
        assert [s.split()[0] for s in statements] == ["SELECT", "WITH", "WITH"], "\n".join(statements)
    else:
        kinds = [s.split()[0] for s in statements if s.split()[0] in {"SELECT", "INSERT", "UPDATE", "DELETE"}]
        assert kinds == ["SELECT", "UPDATE", "INSERT", "INSERT", "UPDATE", "INSERT"], "\n".join(statements)
    # The events with handlers that want them: order.placed (capture, loyalty, ...); not
    # stock.changed while no shop has a device cue rule for it (docs/devices.md).
    assert [e.type for e in deferred] == ["order.placed"]


def _reserve_and_die(buyer, sku, quantity):
    """Run only the reserve step of a buy, as if the process died before paying."""
    from apps.orders.services import order_reserve

    return order_reserve(buyer=buyer, lines=[(sku.code, quantity)], idempotency_key="died-1234")


def test_queries_per_stream_buy(monkeypatch):
    """A buy in a stream names the shop through the stream inside the one read (no separate
    look-up of the stream); the only extra statement is the open-deal check."""
    from apps.streams.models import Stream
    from creatorcommerce.spine import events

    sku = make_sku(stock=50)
    stream = Stream.objects.create(shop=sku.shop, title="Counted", starts_at=timezone.now())
    buyer = make_buyer()
    buy(buyer, sku, key="warm-up-stream", stream=stream.pk)
    monkeypatch.setattr(events, "enqueue_handlers", lambda event: None)
    with CaptureQueriesContext(connection) as ctx:
        outcome = order_place(
            buyer=buyer,
            sku_code=sku.code,
            quantity=1,
            idempotency_key="counted-stream-1",
            fingerprint="counted-stream-1",
            stream_id=stream.pk,
        )
        assert outcome.status == 201, outcome.body
    statements = [q["sql"] for q in ctx.captured_queries]
    reads = [s for s in statements if s.split()[0] == "SELECT"]
    assert len(reads) == 2, "\n".join(statements)  # the buy context and the open-deal check
    assert not any(s.startswith('SELECT "streams_stream"') for s in statements), "\n".join(statements)
