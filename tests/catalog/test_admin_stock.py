"""Stock in the admin, where a creator builds their catalog: a product is created with its
SKUs and their starting stock in one form, the stock is shown and changed on the SKU and
product pages (through the catalog's stock service, so ``stock.changed`` reaches viewers),
and "Add stock level" for a SKU that already has stock at that location sets that count
instead of failing with "already exists".

Forms are posted as a browser would (every input of the rendered page, see tests/helpers.py).
"""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.db import transaction

from apps.catalog.models import SKU, Location, StockLevel
from apps.catalog.services import stock_take
from tests.factories import CreatorFactory, make_sku
from tests.helpers import events_since, inline_row, last_event_id, page_form

pytestmark = pytest.mark.django_db

ADMIN = "/admin/catalog"


@pytest.fixture
def creator(client):
    creator = CreatorFactory()
    client.force_login(creator)
    return creator


def default_stock(sku) -> int:
    return StockLevel.objects.get(sku=sku, location__is_default=True).available


def stock_events(mark):
    return [(e.payload["sku"], e.payload["available"]) for e in events_since(mark, "stock.changed")]


def add_product(client, title, rows):
    """The product add page as rendered (one empty SKU row), with ``rows`` filled in."""
    data = page_form(client, f"{ADMIN}/product/add/")
    assert "skus-0-stock" in data, "the SKU rows have no stock column"
    data.update({"title": title, "skus-TOTAL_FORMS": str(len(rows))})
    blank_row = {key.removeprefix("skus-0-"): value for key, value in data.items() if key.startswith("skus-0-")}
    for i, row in enumerate(rows):
        data.update({f"skus-{i}-{key}": value for key, value in blank_row.items()})
        data.update(
            {
                f"skus-{i}-code": row["code"],
                f"skus-{i}-price": row.get("price", "20.00"),
                f"skus-{i}-currency": "USD",
                f"skus-{i}-is_active": "on",
                f"skus-{i}-stock": str(row.get("stock", "")),
            }
        )
    return client.post(f"{ADMIN}/product/add/", data)


def test_a_product_is_created_with_skus_and_starting_stock_in_one_form(client, creator):
    mark = last_event_id()
    response = add_product(client, "Hoodie", [{"code": "HOOD-M", "stock": 12}, {"code": "HOOD-L", "stock": 0}])
    assert response.status_code == 302, response.content.decode()[:3000]

    m, large = SKU.objects.get(shop=creator.shop, code="HOOD-M"), SKU.objects.get(shop=creator.shop, code="HOOD-L")
    assert (default_stock(m), default_stock(large)) == (12, 0)
    assert Location.objects.get(shop=creator.shop, is_default=True).stock_levels.count() == 2
    assert sorted(stock_events(mark)) == [("HOOD-L", 0), ("HOOD-M", 12)]


def test_a_starting_stock_above_the_limit_is_a_form_error_and_saves_nothing(client, creator):
    from apps.catalog.services import MAX_STOCK_PER_LEVEL

    response = add_product(client, "Too many", [{"code": "MANY", "stock": MAX_STOCK_PER_LEVEL + 1}])
    assert response.status_code == 200
    assert not SKU.objects.filter(code="MANY").exists()


def test_a_new_pin_of_a_product_made_in_the_admin_shows_its_stock(client, creator):
    """It showed "Sold out": the admin could only make a SKU with 0 units at the default
    location (the count stream pins show), and "Add stock level" there failed."""
    from django.utils import timezone

    from apps.streams.models import Stream
    from apps.streams.selectors import stream_snapshot
    from apps.streams.services import pin_add

    assert add_product(client, "Cap", [{"code": "CAP", "stock": 15}]).status_code == 302
    stream = Stream.objects.create(shop=creator.shop, title="Caps", starts_at=timezone.now())
    pin_add(stream=stream, sku=SKU.objects.get(shop=creator.shop, code="CAP"))
    assert stream_snapshot(stream_id=stream.pk)["stock"] == {"CAP": 15}


def test_stock_is_shown_and_changed_on_the_sku_page(client, creator):
    sku = make_sku(creator.shop, code="TEE", stock=5)
    url = f"{ADMIN}/sku/{sku.pk}/change/"
    data = page_form(client, url)
    assert data["stock"] == "5"
    # Two units sell while the page is open; the creator adds 3 to the 5 they saw.
    with transaction.atomic():
        stock_take(level_id=StockLevel.objects.get(sku=sku).pk, quantity=2)
    mark = last_event_id()
    response = client.post(url, {**data, "stock": "8"})
    assert response.status_code == 302
    assert default_stock(sku) == 6  # 5 - 2 sold + 3 added: the sold units stay sold
    assert stock_events(mark) == [("TEE", 6)]


def test_stock_is_shown_and_changed_on_the_product_page(client, creator):
    sku = make_sku(creator.shop, code="MUG", stock=4)
    url = f"{ADMIN}/product/{sku.product_id}/change/"
    data = page_form(client, url)
    row = inline_row(data, "skus", sku)
    assert data[f"{row}-stock"] == "4"
    mark = last_event_id()
    assert client.post(url, {**data, f"{row}-stock": "30"}).status_code == 302
    assert default_stock(sku) == 30
    assert stock_events(mark) == [("MUG", 30)]
    # The event names the row stream pages follow (the default location's), so viewers'
    # counters move.
    (event,) = events_since(mark, "stock.changed")
    assert event.payload["level"] == StockLevel.objects.get(sku=sku, location__is_default=True).pk
    # Saving the page again without touching the count changes nothing.
    mark = last_event_id()
    assert client.post(url, page_form(client, url)).status_code == 302
    assert default_stock(sku) == 30 and stock_events(mark) == []


def test_removing_more_than_is_left_on_the_sku_page_changes_nothing_and_says_why(client, creator):
    sku = make_sku(creator.shop, code="PIN", stock=5)
    url = f"{ADMIN}/sku/{sku.pk}/change/"
    data = page_form(client, url)
    with transaction.atomic():
        stock_take(level_id=StockLevel.objects.get(sku=sku).pk, quantity=4)
    mark = last_event_id()
    response = client.post(url, {**data, "stock": "0"}, follow=True)
    assert default_stock(sku) == 1
    assert stock_events(mark) == []
    assert any("Nothing was changed" in str(m) for m in get_messages(response.wsgi_request))


def test_add_stock_level_where_one_exists_sets_its_count(client, creator):
    """A SKU made in the admin already has its row at the default location; adding a stock
    level there failed with "Stock level with this Sku and Location already exists"."""
    sku = make_sku(creator.shop, code="SCARF", stock=0)
    default = Location.objects.get(shop=creator.shop, is_default=True)
    mark = last_event_id()
    response = client.post(
        f"{ADMIN}/stocklevel/add/", {"sku": str(sku.pk), "location": str(default.pk), "available": "7"}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert StockLevel.objects.filter(sku=sku).count() == 1
    assert default_stock(sku) == 7
    assert stock_events(mark) == [("SCARF", 7)]


def test_stock_edited_for_several_skus_is_written_in_stock_row_order(client, creator):
    """The page lists SKUs by code; their stock rows are changed in id order, the order a
    multi-line buy locks them in (docs/buying.md, "Several lines in one tap"), so a save
    and a buy cannot deadlock."""
    from apps.catalog.services import product_create

    product = product_create(
        shop=creator.shop,
        title="Two",
        skus=[{"code": "Z-FIRST", "price": "5.00", "stock": 5}, {"code": "A-SECOND", "price": "5.00", "stock": 5}],
    )
    z, a = SKU.objects.get(code="Z-FIRST"), SKU.objects.get(code="A-SECOND")
    assert default_level(z).pk < default_level(a).pk
    url = f"{ADMIN}/product/{product.pk}/change/"
    data = page_form(client, url)
    assert data[f"{inline_row(data, 'skus', a)}-stock"] == "5"  # listed first (by code)
    mark = last_event_id()
    edited = {f"{inline_row(data, 'skus', a)}-stock": "7", f"{inline_row(data, 'skus', z)}-stock": "9"}
    assert client.post(url, {**data, **edited}).status_code == 302
    assert stock_events(mark) == [("Z-FIRST", 9), ("A-SECOND", 7)]


def default_level(sku):
    return StockLevel.objects.get(sku=sku, location__is_default=True)
