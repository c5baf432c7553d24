"""What a save in the catalog admin writes: a price change goes through sku_set_price (so
stream pages hear price.changed), a price changed by someone else while the page was open is
not written back, and a stock edit applies the difference to the count the page showed, so
units sold meanwhile stay sold.

Forms are posted as a browser would: every input of the change page as rendered (management
forms, hidden ids and ``initial-*`` values included), with the edits a test makes on top.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import transaction

from apps.catalog.models import SKU, StockLevel
from apps.catalog.services import MAX_STOCK_PER_LEVEL, sku_set_price, stock_adjust, stock_take
from creatorcommerce.spine.models import OutboxEvent
from tests.factories import CreatorFactory, StaffFactory, make_sku
from tests.helpers import inline_row, page_form

pytestmark = pytest.mark.django_db

ADMIN = "/admin/catalog"


def sku_row(data, sku) -> str:
    return inline_row(data, "skus", sku)


def prices_changed():
    return list(OutboxEvent.objects.filter(type="price.changed").order_by("id").values_list("payload", flat=True))


def message_texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def creator(client):
    creator = CreatorFactory()
    client.force_login(creator)
    return creator


@pytest.fixture
def sku(creator):
    return make_sku(creator.shop, code="TEE", price="10.00", stock=5)


def sku_url(sku):
    return f"{ADMIN}/sku/{sku.pk}/change/"


def product_url(sku):
    return f"{ADMIN}/product/{sku.product_id}/change/"


# -- prices ---------------------------------------------------------------------------------


def test_a_price_changed_on_the_sku_page_emits_price_changed(client, sku):
    data = page_form(client, sku_url(sku))
    data["price"] = "12.50"

    response = client.post(sku_url(sku), data)

    assert response.status_code == 302
    sku.refresh_from_db()
    assert sku.price == Decimal("12.50")
    (event,) = prices_changed()
    assert (event["sku_id"], event["price"], event["old_price"], event["currency"], event["source"]) == (
        sku.pk,
        "12.50",
        "10.00",
        "USD",
        "admin",
    )


def test_a_price_changed_in_the_product_page_emits_price_changed(client, sku):
    data = page_form(client, product_url(sku))
    data[f"{sku_row(data, sku)}-price"] = "8.00"
    data["title"] = "Renamed tee"

    response = client.post(product_url(sku), data)

    assert response.status_code == 302
    sku.refresh_from_db()
    assert sku.price == Decimal("8.00") and sku.product.title == "Renamed tee"
    (event,) = prices_changed()
    assert (event["sku_id"], event["price"], event["old_price"], event["source"]) == (sku.pk, "8.00", "10.00", "admin")


def test_a_currency_change_emits_price_changed_with_it(client, sku):
    data = page_form(client, sku_url(sku))
    data["currency"] = "EUR"

    assert client.post(sku_url(sku), data).status_code == 302

    sku.refresh_from_db()
    assert (sku.price, sku.currency) == (Decimal("10.00"), "EUR")
    (event,) = prices_changed()
    assert (event["price"], event["currency"]) == ("10.00", "EUR")


def test_other_edits_emit_no_price_changed(client, sku):
    data = page_form(client, sku_url(sku))
    data.pop("is_active")  # unticked
    data["title"] = "Summer tee"

    assert client.post(sku_url(sku), data).status_code == 302

    sku.refresh_from_db()
    assert (sku.is_active, sku.title, sku.price) == (False, "Summer tee", Decimal("10.00"))
    assert prices_changed() == []

    data = page_form(client, product_url(sku))
    data[f"{sku_row(data, sku)}-is_active"] = "on"
    assert client.post(product_url(sku), data).status_code == 302
    sku.refresh_from_db()
    assert sku.is_active and prices_changed() == []


@pytest.mark.parametrize("page", ["sku", "product"])
def test_a_price_set_by_the_webhook_while_the_page_was_open_is_kept(client, sku, page):
    url = sku_url(sku) if page == "sku" else product_url(sku)
    data = page_form(client, url)
    with transaction.atomic():
        sku_set_price(sku_id=sku.pk, price=Decimal("11.00"), source="webhook")
    field = "title" if page == "sku" else f"{sku_row(data, sku)}-title"
    data[field] = "Renamed variant"

    assert client.post(url, data).status_code == 302

    sku.refresh_from_db()
    assert (sku.title, sku.price) == ("Renamed variant", Decimal("11.00"))
    assert [event["source"] for event in prices_changed()] == ["webhook"]


def test_a_price_set_by_the_webhook_during_the_save_is_kept(client, sku, monkeypatch):
    data = page_form(client, sku_url(sku))
    data["title"] = "Renamed variant"
    original = SKU.clean

    def clean_then_webhook(self):
        original(self)
        sku_set_price(sku_id=self.pk, price=Decimal("11.00"), source="webhook")

    monkeypatch.setattr(SKU, "clean", clean_then_webhook)

    assert client.post(sku_url(sku), data).status_code == 302

    sku.refresh_from_db()
    assert (sku.title, sku.price) == ("Renamed variant", Decimal("11.00"))


def test_staff_price_change_emits_price_changed(client, sku):
    client.force_login(StaffFactory())
    data = page_form(client, sku_url(sku))
    data["price"] = "15.00"
    assert client.post(sku_url(sku), data).status_code == 302
    assert SKU.objects.get(pk=sku.pk).price == Decimal("15.00")
    assert [event["price"] for event in prices_changed()] == ["15.00"]


# -- stock ----------------------------------------------------------------------------------


def level_url(level):
    return f"{ADMIN}/stocklevel/{level.pk}/change/"


@pytest.fixture
def level(sku):
    return StockLevel.objects.get(sku=sku)


def sell(sku, n):
    """A buy taking ``n`` units at the default location, as the buy path does."""
    with transaction.atomic():
        stock_take(level_id=StockLevel.objects.get(sku=sku).pk, quantity=n)


def test_a_stock_edit_keeps_the_units_sold_since_the_page_loaded(client, sku, level):
    data = page_form(client, level_url(level))
    assert data["available"] == "5" and data["initial-available"] == "5"
    sell(sku, 2)
    data["available"] = "8"  # the creator adds three

    response = client.post(level_url(level), data)

    assert response.status_code == 302
    level.refresh_from_db()
    assert level.available == 6  # 5 - 2 sold + 3 added
    event = OutboxEvent.objects.filter(type="stock.changed").latest("id")
    assert (event.payload["level"], event.payload["available"]) == (level.pk, 6)


def test_removing_more_than_is_left_is_an_error_message_and_changes_nothing(client, sku, level):
    data = page_form(client, level_url(level))
    sell(sku, 4)
    before = StockLevel.objects.filter(pk=level.pk).values().get()
    events = OutboxEvent.objects.count()
    data["available"] = "0"  # remove the five the page showed; one is left

    response = client.post(level_url(level), data)

    assert response.status_code == 302 and response["Location"] == level_url(level)
    assert StockLevel.objects.filter(pk=level.pk).values().get() == before
    assert OutboxEvent.objects.count() == events
    assert any("Nothing was changed: only 1 left now" in text for text in message_texts(response))
    page = client.get(level_url(level))
    assert page.context["adminform"].form["available"].value() == 1


def test_adding_past_the_limit_is_an_error_message(client, sku, level):
    data = page_form(client, level_url(level))
    with transaction.atomic():
        stock_adjust(sku=sku, set_to=MAX_STOCK_PER_LEVEL - 1)
    data["available"] = str(MAX_STOCK_PER_LEVEL)

    response = client.post(level_url(level), data)

    assert response.status_code == 302
    level.refresh_from_db()
    assert level.available == MAX_STOCK_PER_LEVEL - 1
    assert any("Nothing was changed" in text for text in message_texts(response))


def test_an_unchanged_stock_page_writes_nothing(client, sku, level):
    data = page_form(client, level_url(level))
    sell(sku, 2)
    before = StockLevel.objects.filter(pk=level.pk).values().get()
    assert client.post(level_url(level), data).status_code == 302
    assert StockLevel.objects.filter(pk=level.pk).values().get() == before


def test_a_forged_loaded_count_is_ignored(client, sku, level):
    data = page_form(client, level_url(level))
    data.update({"available": "7", "initial-available": "99999999999999999999"})
    assert client.post(level_url(level), data).status_code == 302
    level.refresh_from_db()
    assert level.available == 7  # not a number the page could have shown: the row's count is used


def test_a_new_stock_row_takes_the_typed_count(client, sku, creator):
    from apps.catalog.models import Location

    depot = Location.objects.create(shop=creator.shop, name="Depot")
    data = page_form(client, f"{ADMIN}/stocklevel/add/")
    data.update({"sku": str(sku.pk), "location": str(depot.pk), "available": "9"})
    assert client.post(f"{ADMIN}/stocklevel/add/", data).status_code == 302
    assert StockLevel.objects.get(sku=sku, location=depot).available == 9
