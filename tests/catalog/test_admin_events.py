"""A SKU edited in the catalog admin (on its own page or its product's) is saved by the
catalog's sku_update, which emits ``sku.updated`` with the SKU as it now is: other parts (and
the sync plane) learn of a new title, limit or deactivation as they learn of a new price."""

from __future__ import annotations

import pytest

from apps.catalog.models import SKU
from tests.catalog.test_admin_writes import product_url, sku_row, sku_url
from tests.factories import CreatorFactory, make_sku
from tests.helpers import events_since, last_event_id, page_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def creator(client):
    creator = CreatorFactory()
    client.force_login(creator)
    return creator


@pytest.fixture
def tee(creator):
    return make_sku(creator.shop, code="TEE", price="10.00", stock=5)


def test_editing_a_sku_emits_sku_updated(client, tee):
    data = page_form(client, sku_url(tee))
    data["title"], data["per_buyer_limit"] = "Tee, washed", "3"
    mark = last_event_id()

    response = client.post(sku_url(tee), data)

    assert response.status_code == 302
    (event,) = events_since(mark, "sku.updated")
    assert event.groups == [f"sku.{tee.pk}", f"shop.{tee.shop_id}"]
    assert event.payload == {
        "sku": "TEE",
        "sku_id": tee.pk,
        "shop": tee.shop_id,
        "product": tee.product_id,
        "title": "Tee, washed",
        "per_buyer_limit": 3,
        "is_active": True,
        "changed": ["title", "per_buyer_limit"],
    }
    assert SKU.objects.get(pk=tee.pk).title == "Tee, washed"
    assert events_since(mark, "price.changed") == []


def test_deactivating_a_sku_on_its_product_page_emits_sku_updated(client, tee):
    data = page_form(client, product_url(tee))
    data.pop(f"{sku_row(data, tee)}-is_active")  # an unticked box is not posted
    mark = last_event_id()

    response = client.post(product_url(tee), data)

    assert response.status_code == 302
    (event,) = events_since(mark, "sku.updated")
    assert (event.payload["sku_id"], event.payload["is_active"], event.payload["changed"]) == (
        tee.pk,
        False,
        ["is_active"],
    )
    assert not SKU.objects.get(pk=tee.pk).is_active


def test_a_price_only_edit_emits_price_changed_alone(client, tee):
    data = page_form(client, sku_url(tee))
    data["price"] = "11.00"
    mark = last_event_id()

    assert client.post(sku_url(tee), data).status_code == 302

    assert [e.type for e in events_since(mark, "sku.updated", "price.changed")] == ["price.changed"]


def test_adding_a_product_with_a_sku_in_the_admin_emits_its_events(client, creator):
    from tests.catalog.test_admin import product_add_post

    mark = last_event_id()

    response = product_add_post(client, title="Admin hoodie", code="HOODIE", sku_extra={"stock": "7"})

    assert response.status_code == 302
    sku = SKU.objects.get(code="HOODIE")
    events = events_since(mark)
    assert [e.type for e in events] == ["product.created", "sku.created", "stock.changed"]
    assert events[0].payload == {"product": sku.product_id, "shop": creator.shop.pk, "skus": []}
    assert events[1].payload == {
        "sku": "HOODIE",
        "sku_id": sku.pk,
        "shop": creator.shop.pk,
        "product": sku.product_id,
        "title": "",
        "per_buyer_limit": None,
        "is_active": True,
        "price": "12.00",
        "currency": "USD",
    }
    assert (events[2].payload["sku_id"], events[2].payload["available"]) == (sku.pk, 7)


def test_editing_and_deleting_on_the_product_page_emit_product_updated_and_sku_deleted(client, tee):
    data = page_form(client, product_url(tee))
    data["title"] = "Heavy tee"
    data[f"{sku_row(data, tee)}-DELETE"] = "on"
    mark = last_event_id()

    assert client.post(product_url(tee), data).status_code == 302

    events = events_since(mark)
    assert [e.type for e in events] == ["product.updated", "sku.deleted"]
    assert events[0].payload == {
        "product": tee.product_id,
        "shop": tee.shop_id,
        "title": "Heavy tee",
        "image_url": "",
        "is_active": True,
        "changed": ["title"],
    }
    assert events[1].payload == {"sku": "TEE", "sku_id": tee.pk, "shop": tee.shop_id, "product": tee.product_id}
    assert not SKU.objects.filter(pk=tee.pk).exists()


def test_deleting_a_sku_from_its_own_page_or_the_list_emits_sku_deleted(client, creator, tee):
    """Only the product page's rows went through sku_delete: the SKU's delete page and the
    list's "Delete selected" deleted with no event, so a pinned SKU stayed on stream pages."""
    other = make_sku(creator.shop, code="CAP", price="8.00", stock=2)
    mark = last_event_id()

    response = client.post(f"/admin/catalog/sku/{tee.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    response = client.post(
        "/admin/catalog/sku/", {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"}
    )
    assert response.status_code == 302

    assert [e.payload["sku"] for e in events_since(mark, "sku.deleted")] == ["TEE", "CAP"]
    assert not SKU.objects.filter(pk__in=[tee.pk, other.pk]).exists()


def test_deleting_a_product_emits_sku_deleted_for_each_sku_then_product_deleted(client, creator, tee):
    product = tee.product
    mark = last_event_id()

    response = client.post(f"/admin/catalog/product/{product.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert [e.payload["sku"] for e in events_since(mark, "sku.deleted")] == ["TEE"]
    (deleted,) = events_since(mark, "product.deleted")
    assert deleted.payload == {"product": product.pk, "shop": product.shop_id}


def test_a_sku_with_a_flash_deal_cannot_be_deleted(client, creator, tee):
    """A deal's SKU used to cascade away with it (an open deal's units with it), untold."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.streams.models import FlashDeal, Stream

    stream = Stream.objects.create(shop=creator.shop, title="Drop", starts_at=timezone.now() + timedelta(hours=1))
    FlashDeal.objects.create(
        stream=stream, sku=tee, price="5.00", quantity=2,
        opens_at=stream.starts_at, closes_at=stream.starts_at + timedelta(hours=1),
    )  # fmt: skip
    mark = last_event_id()

    page = client.post(f"/admin/catalog/sku/{tee.pk}/delete/", {"post": "yes"})

    assert page.status_code == 200  # the confirmation page, naming what protects it
    assert "flash deal" in page.content.decode().lower()
    assert SKU.objects.filter(pk=tee.pk).exists() and FlashDeal.objects.filter(sku=tee).exists()
    assert events_since(mark, "sku.deleted") == []
