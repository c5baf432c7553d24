"""The exact events the catalog's services send (docs/events.md): type, payload and groups,
each checked against its declared schema by ``captured_events``."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.catalog.services import product_create, sku_set_price, stock_adjust
from tests.factories import CreatorFactory, make_sku
from tests.helpers import captured_events, expected_stock_changed

pytestmark = pytest.mark.django_db


def test_product_create_sends_each_sku_with_its_opening_stock_then_product_created():
    shop = CreatorFactory().shop
    with captured_events() as events:
        product = product_create(
            shop=shop,
            title="Mug",
            skus=[{"code": "MUG-RED", "price": "9.00", "stock": 4}, {"code": "MUG-BLUE", "price": "9.00"}],
        )
    red, blue = product.skus.get(code="MUG-RED"), product.skus.get(code="MUG-BLUE")

    def created(sku):
        payload = {
            "sku": sku.code,
            "sku_id": sku.pk,
            "shop": shop.pk,
            "product": product.pk,
            "title": "",
            "per_buyer_limit": None,
            "is_active": True,
            "price": "9.00",
            "currency": shop.currency,
        }
        return ("sku.created", payload, [f"sku.{sku.pk}", f"shop.{shop.pk}"])

    assert events == [
        created(red),
        expected_stock_changed(red, 4),
        created(blue),
        expected_stock_changed(blue, 0),
        (
            "product.created",
            {"product": product.pk, "shop": shop.pk, "skus": ["MUG-RED", "MUG-BLUE"]},
            [f"shop.{shop.pk}"],
        ),
    ]


@pytest.mark.parametrize(("change", "available"), [({"set_to": 7}, 7), ({"add": 3}, 8), ({"add": -2}, 3)])
def test_stock_adjust_sends_the_absolute_count_and_version(change, available):
    sku = make_sku(stock=5)
    with captured_events() as events:
        stock_adjust(sku=sku, **change)
    assert events == [expected_stock_changed(sku, available)]


def test_sku_set_price_sends_old_and_new_price_as_decimal_strings():
    sku = make_sku(price="10.00")
    with captured_events() as events:
        sku_set_price(sku_id=sku.pk, price=Decimal("12.50"), source="webhook:3")
        sku_set_price(sku_id=sku.pk, price=Decimal("12.50"))  # unchanged: nothing to tell
    assert events == [
        (
            "price.changed",
            {
                "sku": sku.code,
                "sku_id": sku.pk,
                "shop": sku.shop_id,
                "price": "12.50",
                "old_price": "10.00",
                "currency": "USD",
                "source": "webhook:3",
            },
            [f"sku.{sku.pk}"],
        )
    ]
