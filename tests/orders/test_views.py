"""My orders (issue 14, defect 4): a buyer sees their orders and receipts in the browser,
from a link in the header; nobody else's."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from apps.orders.models import Order
from apps.orders.services import address_set, order_place, order_refund
from tests.factories import StaffFactory, UserFactory, make_buyer, make_sku

pytestmark = pytest.mark.django_db(transaction=True)


def _buy(buyer, sku, quantity=1, key="view-key-1"):
    outcome = order_place(buyer=buyer, sku_code=sku.code, quantity=quantity, idempotency_key=key, fingerprint=key)
    return Order.objects.get(pk=outcome.order.pk)


def test_header_links_to_my_orders_for_a_signed_in_user(client):
    assert "/orders/" not in client.get("/").content.decode()
    client.force_login(UserFactory())
    assert 'href="/orders/"' in client.get("/").content.decode()


def test_my_orders_needs_a_login(client):
    for url in ("/orders/", "/orders/1/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_list_shows_own_orders_newest_first_and_nobody_elses(client):
    sku = make_sku(stock=20, price="9.50")
    buyer, other = make_buyer(), make_buyer()
    first = _buy(buyer, sku, key="mine-1")
    second = _buy(buyer, sku, quantity=2, key="mine-2")
    theirs = _buy(other, sku, key="theirs-1")
    client.force_login(buyer)

    page = client.get("/orders/").content.decode()

    assert page.index(f"/orders/{second.pk}/") < page.index(f"/orders/{first.pk}/")
    assert "19.00" in page and "Paid" in page and sku.shop.name in page
    assert f"/orders/{theirs.pk}/" not in page


def test_empty_list_says_so(client):
    client.force_login(UserFactory())
    page = client.get("/orders/").content.decode()
    assert "No orders yet" in page


def test_detail_shows_lines_address_status_receipt_and_how_to_verify(client):
    sku = make_sku(stock=20, price="12.25")
    buyer = make_buyer()
    order = _buy(buyer, sku, quantity=2)
    address_set(user=buyer, name="Moved Away", line1="5 Elsewhere", city="Oslo", postal_code="0150", country="NO")
    client.force_login(buyer)

    page = client.get(f"/orders/{order.pk}/").content.decode()

    assert sku.display_title in page and "24.50" in page and "12.25" in page
    assert "1 Main St" in page and "Berlin" in page and "Elsewhere" not in page  # the copy, not today's address
    assert "Paid" in page
    assert order.receipt in page
    assert "http://testserver/.well-known/jwks.json" in page
    assert "manage.py verify_receipt" in page and "import jwt" in page and 'algorithms=["EdDSA"]' in page


def test_someone_elses_order_is_404(client):
    order = _buy(make_buyer(), make_sku(stock=5))
    client.force_login(make_buyer())
    assert client.get(f"/orders/{order.pk}/").status_code == 404
    client.force_login(StaffFactory())  # staff use the admin; this page is the buyer's own
    assert client.get(f"/orders/{order.pk}/").status_code == 404


def test_refunded_order_says_so(client):
    sku = make_sku(stock=5)
    buyer = make_buyer()
    order = _buy(buyer, sku)
    order_refund(order=order, actor=StaffFactory(), restock=True, reason="test")
    client.force_login(buyer)
    assert "Refunded" in client.get(f"/orders/{order.pk}/").content.decode()
    assert "Refunded" in client.get("/orders/").content.decode()


def test_times_are_in_the_buyers_zone_and_say_which(client):
    """My orders shows when an order was placed in the buyer's own zone, named (EST/CET...),
    like the admin and the control room do."""
    buyer = make_buyer()
    buyer.time_zone = "America/New_York"
    buyer.save(update_fields=["time_zone"])
    order = _buy(buyer, make_sku(stock=5))
    client.force_login(buyer)
    local = order.created_at.astimezone(ZoneInfo("America/New_York"))
    expected = f"{local:%H:%M} {local.tzname()}"
    assert expected in client.get("/orders/").content.decode()
    assert expected in client.get(f"/orders/{order.pk}/").content.decode()
