"""Another shop cannot break a shop's SKU codes (issue 14, defect 15).

A client names the shop explicitly (``"shop": "<slug>"`` in the buy body, ``?shop=<slug>`` on
``GET /api/v1/skus/{code}/``) or through ``"stream"`` (the stream's shop), as
docs/buying.md, "Naming the shop", says. Whatever other shops do with the same code, those
answers do not change.
"""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from apps.streams.models import Stream
from tests.factories import make_buyer, make_sku

pytestmark = pytest.mark.django_db(transaction=True)


def _buy(client, body, key):
    return client.post(
        "/api/v1/orders/", json.dumps(body), content_type="application/json", headers={"Idempotency-Key": key}
    )


def _answers(client, sku_a, stream, key_suffix):
    shop = sku_a.shop.slug
    by_shop = _buy(client, {"sku": "TEE", "shop": shop}, f"by-shop-{key_suffix}")
    by_stream = _buy(client, {"sku": "TEE", "stream": stream.pk}, f"by-stream-{key_suffix}")
    lookup = client.get(f"/api/v1/skus/TEE/?shop={shop}")
    return (
        (by_shop.status_code, by_shop.json()["lines"], by_shop.json()["total"]),
        (by_stream.status_code, by_stream.json()["lines"], by_stream.json()["total"]),
        (lookup.status_code, {k: v for k, v in lookup.json().items() if k != "available"}),
    )


def test_other_shops_using_the_same_code_change_no_answer_for_a_client_that_names_the_shop(client):
    sku_a = make_sku(code="TEE", price="12.00", stock=50)
    stream = Stream.objects.create(shop=sku_a.shop, title="A's drop", starts_at=timezone.now())
    buyer = make_buyer()
    client.force_login(buyer)
    before = _answers(client, sku_a, stream, "before")
    assert before[0][0] == before[1][0] == 201 and before[0][2] == "12.00"

    # Shops B and C sell their own "TEE", cheaper.
    make_sku(code="TEE", price="1.00", stock=50)
    make_sku(code="TEE", price="2.00", stock=50)

    after = _answers(client, sku_a, stream, "after")
    assert after == before
    # A client that names nothing now gets a clear 409, never another shop's SKU.
    unnamed = _buy(client, {"sku": "TEE"}, "unnamed-1")
    assert unnamed.status_code == 409 and unnamed.json()["code"] == "ambiguous_sku"


def test_a_stream_of_another_shop_does_not_sell_this_shops_code(client):
    sku_a = make_sku(code="CAP", stock=5)
    other_stream = Stream.objects.create(shop=make_sku(code="HAT").shop, title="B", starts_at=timezone.now())
    client.force_login(make_buyer())
    response = _buy(client, {"sku": sku_a.code, "stream": other_stream.pk}, "cross-shop-1")
    assert response.status_code == 404 and response.json()["code"] == "sku_not_found"


def test_an_unknown_stream_is_404(client):
    sku = make_sku(stock=5)
    client.force_login(make_buyer())
    response = _buy(client, {"sku": sku.code, "stream": 987654}, "no-stream-1")
    assert response.status_code == 404 and response.json()["code"] == "stream_not_found"


def test_a_stream_buy_finds_its_shops_code_however_many_other_shops_used_it_first(client):
    """Two other shops had the code before this one: a stream buy (as the storefront sends
    it) and a shop-named buy still find this shop's SKU, at its price."""
    make_sku(code="MUG", price="1.00", stock=50)
    make_sku(code="MUG", price="2.00", stock=50)
    sku_a = make_sku(code="MUG", price="15.00", stock=50)
    stream = Stream.objects.create(shop=sku_a.shop, title="A's drop", starts_at=timezone.now())
    client.force_login(make_buyer())

    by_stream = _buy(client, {"sku": "MUG", "stream": stream.pk}, "mug-stream-1")
    by_shop = _buy(client, {"sku": "MUG", "shop": sku_a.shop.slug}, "mug-shop-1")

    assert by_stream.status_code == 201, by_stream.content
    assert by_stream.json()["total"] == "15.00"
    assert by_shop.status_code == 201 and by_shop.json()["total"] == "15.00"
    assert client.get(f"/api/v1/skus/MUG/?shop={sku_a.shop.slug}").json()["price"] == "15.00"
