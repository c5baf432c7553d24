"""Refunds (issue 14, defect 7): staff and the shop's creator refund a paid order; the
gateway refunds, the order becomes ``refunded``, the stock goes back if chosen,
``order.refunded`` is emitted and an audit entry is written, all in one transaction."""

from __future__ import annotations

import pytest

from apps.audit.exceptions import AuditEntryImmutable
from apps.audit.models import AuditEntry
from apps.catalog.models import StockLevel
from apps.orders.exceptions import (
    OrderAlreadyRefunded,
    OrderNotPaid,
    RefundFailed,
    RefundNotAllowed,
    RefundReasonRequired,
)
from apps.orders.models import Order
from apps.orders.payments import TestGateway
from apps.orders.services import order_place, order_refund, request_fingerprint
from creatorcommerce.spine.models import OutboxEvent
from tests.factories import CreatorFactory, StaffFactory, UserFactory, make_buyer, make_sku

pytestmark = pytest.mark.django_db(transaction=True)


def _paid_order(*, stock=10, quantity=2, token="tok_ok", price="20.00"):
    sku = make_sku(stock=stock, price=price)
    buyer = make_buyer(token=token)
    outcome = order_place(
        buyer=buyer,
        sku_code=sku.code,
        quantity=quantity,
        idempotency_key=f"refund-test-{buyer.pk}",
        fingerprint=request_fingerprint({"sku": sku.code}),
    )
    return sku, Order.objects.get(pk=outcome.order.pk)


def _authorized_not_captured():
    """A paid order whose hold the gateway has not captured yet (the capture task pending)."""
    _, order = _paid_order()
    TestGateway._captures.pop(order.payment_reference, None)
    Order.objects.filter(pk=order.pk).update(payment_status=Order.PaymentStatus.AUTHORIZED, capture_reference="")
    order.refresh_from_db()
    return order


def _available(sku):
    return StockLevel.objects.get(sku=sku).available


def _events(order_type):
    return list(OutboxEvent.objects.filter(type=order_type).values_list("payload", flat=True))


def test_staff_refund_with_restock_refunds_restocks_emits_and_audits():
    sku, order = _paid_order(stock=10, quantity=2)
    assert _available(sku) == 8
    staff = StaffFactory()

    refunded = order_refund(order=order, actor=staff, restock=True, reason="Parcel lost in transit")

    order.refresh_from_db()
    assert refunded.status == order.status == Order.Status.REFUNDED
    assert order.payment_status == Order.PaymentStatus.REFUNDED and order.refund_reference.startswith("re_")
    assert order.refunded_at is not None
    assert TestGateway.refunds_of(order.capture_reference) == 1
    assert _available(sku) == 10
    (event,) = _events("order.refunded")
    assert event == {
        "order": order.pk,
        "shop": order.shop_id,
        "total": "40.00",
        "currency": "USD",
        "restocked": True,
        "lines": [{"sku": sku.code, "sku_id": sku.pk, "quantity": 2}],
    }
    assert OutboxEvent.objects.filter(type="stock.changed", payload__available=10).exists()
    (entry,) = AuditEntry.objects.all()
    assert (entry.action, entry.object_type, entry.object_id) == ("order.refunded", "orders.order", str(order.pk))
    assert entry.actor == staff and entry.actor_label == staff.email and entry.shop_id == order.shop_id
    assert entry.reason == "Parcel lost in transit"
    assert entry.details["restock"] is True and entry.details["amount"] == "40.00"
    assert entry.details["refund_reference"] == order.refund_reference


def test_shop_creator_refunds_without_restock_and_stock_stays():
    sku, order = _paid_order(stock=10, quantity=3)
    order_refund(order=order, actor=sku.shop.owner, restock=False, reason="Damaged on arrival")
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert _available(sku) == 7
    assert _events("order.refunded")[0]["restocked"] is False
    assert AuditEntry.objects.get().details["restock"] is False


def test_refunding_twice_is_refused_and_refunds_once():
    _, order = _paid_order()
    staff = StaffFactory()
    order_refund(order=order, actor=staff, restock=True, reason="first")
    with pytest.raises(OrderAlreadyRefunded):
        order_refund(order=order, actor=staff, restock=True, reason="second")
    assert TestGateway.refunds_of(order.capture_reference) == 1
    assert AuditEntry.objects.count() == 1 and len(_events("order.refunded")) == 1


def test_refunding_an_unpaid_order_is_refused():
    sku = make_sku(stock=5)
    buyer = make_buyer(token="tok_declined")
    outcome = order_place(buyer=buyer, sku_code=sku.code, quantity=1, idempotency_key="declined-1", fingerprint="f")
    order = Order.objects.get(pk=outcome.order.pk)
    assert order.status == Order.Status.DECLINED
    with pytest.raises(OrderNotPaid):
        order_refund(order=order, actor=StaffFactory(), restock=True, reason="why not")
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("who", ["other_creator", "viewer", "buyer"])
def test_only_staff_and_the_shops_creator_may_refund(who):
    _, order = _paid_order()
    actor = {"other_creator": CreatorFactory, "viewer": UserFactory}.get(who, lambda: order.buyer)()
    with pytest.raises(RefundNotAllowed):
        order_refund(order=order, actor=actor, restock=True, reason="not mine")
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert TestGateway.refunds_of(order.capture_reference) == 0
    assert not AuditEntry.objects.exists() and not _events("order.refunded")


def test_a_blank_reason_is_refused():
    _, order = _paid_order()
    with pytest.raises(RefundReasonRequired):
        order_refund(order=order, actor=StaffFactory(), restock=True, reason="   ")


def test_gateway_failure_leaves_the_order_paid_and_writes_nothing(monkeypatch):
    sku, order = _paid_order(stock=10, quantity=2)
    events_before = OutboxEvent.objects.count()

    def down(self, **kwargs):
        raise ConnectionError("gateway timed out")

    monkeypatch.setattr(TestGateway, "refund", down)
    with pytest.raises(RefundFailed):
        order_refund(order=order, actor=StaffFactory(), restock=True, reason="customer asked")
    order.refresh_from_db()
    assert order.status == Order.Status.PAID and order.payment_status == Order.PaymentStatus.CAPTURED
    assert _available(sku) == 8
    assert OutboxEvent.objects.count() == events_before
    assert not AuditEntry.objects.exists()


def test_an_authorized_not_yet_captured_order_is_voided():
    order = _authorized_not_captured()
    order_refund(order=order, actor=StaffFactory(), restock=False, reason="cancelled before capture")
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED and order.payment_status == Order.PaymentStatus.VOIDED
    assert ("void", order.payment_reference) in [(op, ref) for op, ref, _ in TestGateway.ledger]


def test_a_capture_landing_during_a_refund_is_refunded_not_recorded_as_voided(monkeypatch):
    """The refund read "authorised" and chose to void; the capture task captured first. The
    void is refused, nothing is written, and the next try refunds the capture."""
    from apps.orders.services import order_capture

    order = _authorized_not_captured()
    void = TestGateway.void

    def capture_first(self, *, authorization_id):
        assert order_capture(order_id=order.pk)
        return void(self, authorization_id=authorization_id)

    monkeypatch.setattr(TestGateway, "void", capture_first)
    with pytest.raises(RefundFailed):
        order_refund(order=order, actor=StaffFactory(), restock=True, reason="cancelled")
    order.refresh_from_db()
    assert order.status == Order.Status.PAID and order.payment_status == Order.PaymentStatus.CAPTURED
    assert not AuditEntry.objects.exists()

    monkeypatch.setattr(TestGateway, "void", void)
    order_refund(order=order, actor=StaffFactory(), restock=True, reason="cancelled")
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED and order.payment_status == Order.PaymentStatus.REFUNDED
    assert TestGateway.refunds_of(order.capture_reference) == 1


def test_a_capture_after_a_refund_voided_the_hold_takes_nothing(monkeypatch):
    """The capture task read "authorised"; a refund voided the hold before it reached the
    gateway. The gateway refuses, the order stays refunded, nothing is captured."""
    from apps.orders.services import order_capture

    order = _authorized_not_captured()
    captures_before = TestGateway.captures_of(order.payment_reference)
    capture = TestGateway.capture

    def refund_first(self, *, authorization_id, amount):
        order_refund(order=order, actor=StaffFactory(), restock=False, reason="cancelled")
        return capture(self, authorization_id=authorization_id, amount=amount)

    monkeypatch.setattr(TestGateway, "capture", refund_first)
    assert order_capture(order_id=order.pk) is False
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED and order.payment_status == Order.PaymentStatus.VOIDED
    assert TestGateway.captures_of(order.payment_reference) == captures_before
    assert order.capture_reference == ""


def test_audit_entries_cannot_be_changed_or_deleted():
    _, order = _paid_order()
    order_refund(order=order, actor=StaffFactory(), restock=True, reason="audit me")
    entry = AuditEntry.objects.get()
    entry.reason = "rewritten"
    with pytest.raises(AuditEntryImmutable):
        entry.save()
    with pytest.raises(AuditEntryImmutable):
        entry.delete()
    with pytest.raises(AuditEntryImmutable):
        AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten")
    with pytest.raises(AuditEntryImmutable):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get().reason == "audit me"
