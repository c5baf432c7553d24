"""A SKU edited in the catalog admin (on its own page or its product's) is saved by the
catalog's sku_update, which emits ``sku.updated`` with the SKU as it now is: other parts (and
the sync plane) learn of a new title, limit or deactivation as they learn of a new price."""

from __future__ import annotations

import pytest

from apps.catalog.models import SKU
from tests.catalog.test_admin_writes import creator, product_url, sku, sku_row, sku_url  # noqa: F401 - fixtures
from tests.helpers import events_since, last_event_id, page_form

pytestmark = pytest.mark.django_db


def test_editing_a_sku_emits_sku_updated(client, sku):  # noqa: F811 - the fixture
    data = page_form(client, sku_url(sku))
    data["title"], data["per_buyer_limit"] = "Tee, washed", "3"
    mark = last_event_id()

    response = client.post(sku_url(sku), data)

    assert response.status_code == 302
    (event,) = events_since(mark, "sku.updated")
    assert event.groups == [f"sku.{sku.pk}", f"shop.{sku.shop_id}"]
    assert event.payload == {
        "sku": "TEE",
        "sku_id": sku.pk,
        "shop": sku.shop_id,
        "product": sku.product_id,
        "title": "Tee, washed",
        "per_buyer_limit": 3,
        "is_active": True,
        "changed": ["title", "per_buyer_limit"],
    }
    assert SKU.objects.get(pk=sku.pk).title == "Tee, washed"
    assert events_since(mark, "price.changed") == []


def test_deactivating_a_sku_on_its_product_page_emits_sku_updated(client, sku):  # noqa: F811 - the fixture
    data = page_form(client, product_url(sku))
    data.pop(f"{sku_row(data, sku)}-is_active")  # an unticked box is not posted
    mark = last_event_id()

    response = client.post(product_url(sku), data)

    assert response.status_code == 302
    (event,) = events_since(mark, "sku.updated")
    assert (event.payload["sku_id"], event.payload["is_active"], event.payload["changed"]) == (
        sku.pk,
        False,
        ["is_active"],
    )
    assert not SKU.objects.get(pk=sku.pk).is_active


def test_a_price_only_edit_emits_price_changed_alone(client, sku):  # noqa: F811 - the fixture
    data = page_form(client, sku_url(sku))
    data["price"] = "11.00"
    mark = last_event_id()

    assert client.post(sku_url(sku), data).status_code == 302

    assert [e.type for e in events_since(mark, "sku.updated", "price.changed")] == ["price.changed"]
