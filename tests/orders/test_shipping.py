"""An order keeps a copy of the buyer's shipping address as it was at the buy (issue 14,
defect 3): the creator ships to it, whatever the buyer changes afterwards."""

from __future__ import annotations

import json

import pytest

from apps.orders.models import Order
from apps.orders.services import address_set
from tests.factories import StaffFactory, make_buyer, make_sku

pytestmark = pytest.mark.django_db(transaction=True)

ADA = {
    "name": "Ada Buyer",
    "line1": "1 Main St",
    "line2": "",
    "city": "Berlin",
    "region": "",
    "postal_code": "10115",
    "country": "DE",
}


def _buy(client, sku, key, **extra):
    return client.post(
        "/api/v1/orders/",
        json.dumps({"sku": sku.code, "quantity": 1, **extra}),
        content_type="application/json",
        headers={"Idempotency-Key": key},
    )


def test_order_shows_the_address_it_was_bought_with_after_the_buyer_moves(client):
    sku = make_sku(stock=5)
    buyer = make_buyer()
    client.force_login(buyer)
    response = _buy(client, sku, "ship-key-0001")
    assert response.status_code == 201, response.content
    assert response.json()["shipping_address"] == ADA

    address_set(user=buyer, name="Ada Moved", line1="9 Rue Neuve", city="Paris", postal_code="75001", country="FR")

    order = client.get(f"/api/v1/orders/{response.json()['id']}/").json()
    assert order["shipping_address"] == ADA
    assert client.get("/api/v1/orders/").json()[0]["shipping_address"] == ADA
    # A new buy ships to the new address.
    second = _buy(client, sku, "ship-key-0002").json()
    assert second["shipping_address"]["city"] == "Paris" and second["shipping_address"]["name"] == "Ada Moved"


def test_replayed_buy_answers_the_same_address(client):
    sku = make_sku(stock=5)
    buyer = make_buyer()
    client.force_login(buyer)
    first = _buy(client, sku, "ship-replay-1").json()
    address_set(user=buyer, name="Other", line1="2 Side St", city="Rome", postal_code="00100", country="IT")
    again = _buy(client, sku, "ship-replay-1")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first


def test_an_order_without_a_copy_shows_null():
    """Orders placed before the copy existed have none; the API says null, not an empty address."""
    from apps.orders.selectors import order_body

    sku = make_sku(stock=5)
    buyer = make_buyer()
    from apps.orders.services import order_place, request_fingerprint

    outcome = order_place(
        buyer=buyer, sku_code=sku.code, quantity=1, idempotency_key="old-order-1", fingerprint=request_fingerprint({})
    )
    Order.objects.filter(pk=outcome.order.pk).update(
        shipping_name="", shipping_line1="", shipping_city="", shipping_postal_code="", shipping_country=""
    )
    assert order_body(Order.objects.get(pk=outcome.order.pk))["shipping_address"] is None


def test_admin_order_page_shows_the_shipping_address_and_lists_can_filter_by_country(client):
    sku = make_sku(stock=5)
    buyer = make_buyer()
    client.force_login(buyer)
    order_id = _buy(client, sku, "ship-admin-1").json()["id"]

    client.force_login(StaffFactory())
    page = client.get(f"/admin/orders/order/{order_id}/change/").content.decode()
    assert "1 Main St" in page and "10115" in page and "Berlin" in page
    listing = client.get("/admin/orders/order/?shipping_country__exact=DE").content.decode()
    assert f"/admin/orders/order/{order_id}/change/" in listing
    assert (
        f"/admin/orders/order/{order_id}/change/"
        not in client.get("/admin/orders/order/?shipping_country__exact=FR").content.decode()
    )
    searched = client.get("/admin/orders/order/?q=10115").content.decode()
    assert f"/admin/orders/order/{order_id}/change/" in searched
