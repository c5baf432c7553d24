"""Refunding from the admin: a button on the order page, a confirm step with the stock
choice and a reason, and the audit entry staff can find (issue 14, defect 7)."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEntry
from apps.catalog.models import StockLevel
from apps.orders.models import Order
from apps.orders.services import order_place
from tests.factories import CreatorFactory, StaffFactory, make_buyer, make_sku

pytestmark = pytest.mark.django_db(transaction=True)


def _paid_order(quantity=2):
    sku = make_sku(stock=10)
    buyer = make_buyer()
    outcome = order_place(
        buyer=buyer, sku_code=sku.code, quantity=quantity, idempotency_key=f"adm-{buyer.pk}", fingerprint="f"
    )
    return sku, Order.objects.get(pk=outcome.order.pk)


def _url(order, suffix="change/"):
    return f"/admin/orders/order/{order.pk}/{suffix}"


def test_creator_refunds_from_the_order_page_with_a_confirm_step(client):
    sku, order = _paid_order()
    client.force_login(sku.shop.owner)

    page = client.get(_url(order)).content.decode()
    assert _url(order, "refund/") in page
    # The buyer is shown, not linked: the user's admin page is staff-only (a 403 for creators).
    assert order.buyer.email in page
    assert f"/admin/accounts/user/{order.buyer_id}/change/" not in page

    confirm = client.get(_url(order, "refund/"))
    assert confirm.status_code == 200
    assert "Put the units back in stock" in confirm.content.decode()
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID  # looking changes nothing

    # Without a stock choice and a reason nothing happens.
    refused = client.post(_url(order, "refund/"), {"reason": ""})
    assert refused.status_code == 200 and Order.objects.get(pk=order.pk).status == Order.Status.PAID

    done = client.post(_url(order, "refund/"), {"restock": "yes", "reason": "Returned unopened"}, follow=True)
    assert "refunded" in done.content.decode() and "back in stock" in done.content.decode()
    assert Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED
    assert StockLevel.objects.get(sku=sku).available == 10
    # The button is gone once refunded, and a second POST is refused with a clear message.
    assert _url(order, "refund/") not in client.get(_url(order)).content.decode()
    again = client.post(_url(order, "refund/"), {"restock": "yes", "reason": "again"}, follow=True)
    assert "already been refunded" in again.content.decode()
    assert AuditEntry.objects.count() == 1


def test_a_reason_with_bidi_override_characters_is_refused(client):
    """The reason is kept for good in the audit log: the free-text rule applies to it too."""
    sku, order = _paid_order()
    client.force_login(sku.shop.owner)
    refused = client.post(_url(order, "refund/"), {"restock": "yes", "reason": "Returned \u202egnp.exe"})
    assert refused.status_code == 200
    assert "reason" in refused.context["form"].errors
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert not AuditEntry.objects.exists()


def test_another_shops_creator_cannot_reach_the_refund_page(client):
    _, order = _paid_order()
    client.force_login(CreatorFactory())
    assert client.get(_url(order, "refund/")).status_code == 404
    assert client.post(_url(order, "refund/"), {"restock": "no", "reason": "mine now"}).status_code == 404
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


def test_staff_refund_then_find_the_audit_entry(client):
    _, order = _paid_order()
    _, other = _paid_order()
    client.force_login(StaffFactory())
    # The list action leads to the same confirm step.
    action = client.post("/admin/orders/order/", {"action": "refund_selected", "_selected_action": [order.pk]})
    assert action.status_code == 302 and action["Location"].endswith(_url(order, "refund/"))
    client.post(_url(order, "refund/"), {"restock": "no", "reason": "Chargeback avoided"})

    listing = client.get("/admin/audit/auditentry/?action__exact=order.refunded").content.decode()
    assert "Chargeback avoided" in listing
    found = client.get(f"/admin/audit/auditentry/?q={order.pk}").content.decode()
    entry = AuditEntry.objects.get(object_id=str(order.pk))
    assert f"/admin/audit/auditentry/{entry.pk}/change/" in found
    detail = client.get(f"/admin/audit/auditentry/{entry.pk}/change/")
    assert detail.status_code == 200 and "Chargeback avoided" in detail.content.decode()
    # Read-only: no add, no delete, no edit.
    assert client.get("/admin/audit/auditentry/add/").status_code == 403
    assert client.post(f"/admin/audit/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Order.objects.get(pk=other.pk).status == Order.Status.PAID


def test_a_creator_reads_only_their_own_shops_audit_entries(client):
    sku, order = _paid_order()
    _, other = _paid_order()
    client.force_login(StaffFactory())
    client.post(_url(order, "refund/"), {"restock": "no", "reason": "mine"})
    client.post(_url(other, "refund/"), {"restock": "no", "reason": "theirs"})
    client.force_login(sku.shop.owner)
    listing = client.get("/admin/audit/auditentry/").content.decode()
    assert "mine" in listing and "theirs" not in listing
    mine, theirs = (AuditEntry.objects.get(object_id=str(o.pk)) for o in (order, other))
    page = client.get(f"/admin/audit/auditentry/{mine.pk}/change/")
    assert page.status_code == 200 and "mine" in page.content.decode()
    assert client.get(f"/admin/audit/auditentry/{theirs.pk}/change/").status_code in (302, 403, 404)
    # Read-only for everyone: no add page, no deleting.
    assert client.get("/admin/audit/auditentry/add/").status_code == 403
    assert client.post(f"/admin/audit/auditentry/{mine.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.filter(pk=mine.pk).exists()


def test_the_refund_page_of_a_refunded_order_says_so_at_once(client):
    from apps.orders.services import order_refund

    _, order = _paid_order()
    staff = StaffFactory()
    order_refund(order=order, actor=staff, restock=False, reason="Damaged")
    client.force_login(staff)
    response = client.get(_url(order, "refund/"), follow=True)
    assert response.redirect_chain[-1][0] == _url(order)
    texts = [str(m) for m in response.context["messages"]]
    assert texts == [f"Order {order.pk} has already been refunded; there is nothing to refund."]
    assert AuditEntry.objects.count() == 1  # nothing more was written
