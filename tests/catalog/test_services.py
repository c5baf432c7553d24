"""Catalog services: stock and allowance invariants, default locations, product creation.

Stock functions run inside the caller's transaction, so each call here is wrapped in
``transaction.atomic()`` like the buy path does.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from apps.catalog import services
from apps.catalog.exceptions import (
    BuyerLimitExceeded,
    DuplicateSkuCode,
    InsufficientStock,
    InvalidStockChange,
    LocationNotFound,
    StockLimitExceeded,
)
from apps.catalog.models import SKU, BuyerAllowance, Location, Product, StockLevel
from apps.catalog.selectors import sku_for_buy, sku_public
from apps.catalog.services import (
    MAX_STOCK_PER_LEVEL,
    allowance_return,
    allowance_take,
    location_default,
    product_create,
    sku_set_price,
    stock_adjust,
    stock_return,
    stock_take,
)
from creatorcommerce.spine.models import OutboxEvent
from tests.factories import CreatorFactory, UserFactory, make_sku

pytestmark = pytest.mark.django_db


def count(result):
    """What a stock function says is left: an int, or a record with ``available``."""
    return getattr(result, "available", result)


def level_of(sku):
    return StockLevel.objects.get(sku=sku, location__is_default=True)


def catalog_rows():
    return (
        Product.objects.count(),
        SKU.objects.count(),
        StockLevel.objects.count(),
        Location.objects.count(),
        OutboxEvent.objects.count(),
    )


# -- stock_take / stock_return --------------------------------------------------------------


def test_stock_take_returns_what_is_left():
    level = level_of(make_sku(stock=5))
    with transaction.atomic():
        assert count(stock_take(level_id=level.pk, quantity=2)) == 3
        assert count(stock_take(level_id=level.pk, quantity=3)) == 0  # down to exactly zero
    level.refresh_from_db()
    assert level.available == 0


@pytest.mark.parametrize("start, take", [(0, 1), (2, 3), (5, 6), (1, 10_000_000)])
def test_stock_take_never_goes_below_zero(start, take):
    level = level_of(make_sku(stock=start))
    with pytest.raises(InsufficientStock) as raised, transaction.atomic():
        stock_take(level_id=level.pk, quantity=take)
    assert raised.value.code == "sold_out" and raised.value.status == 409
    level.refresh_from_db()
    assert level.available == start


def test_stock_take_failure_changes_nothing_and_later_takes_still_work():
    level = level_of(make_sku(stock=2))
    with transaction.atomic():
        with pytest.raises(InsufficientStock):
            stock_take(level_id=level.pk, quantity=3)
        assert count(stock_take(level_id=level.pk, quantity=2)) == 0
        with pytest.raises(InsufficientStock):
            stock_take(level_id=level.pk, quantity=1)
    level.refresh_from_db()
    assert level.available == 0


def test_stock_take_of_a_missing_level_is_insufficient_stock():
    with pytest.raises(InsufficientStock), transaction.atomic():
        stock_take(level_id=987_654, quantity=1)


def test_stock_return_gives_units_back():
    level = level_of(make_sku(stock=1))
    with transaction.atomic():
        assert count(stock_return(level_id=level.pk, quantity=4)) == 5
    level.refresh_from_db()
    assert level.available == 5


def test_stock_return_for_a_release_is_never_refused_even_above_the_limit():
    """Units given back by an order release came out of the row; refusing them would lose them."""
    level = level_of(make_sku(stock=0))
    StockLevel.objects.filter(pk=level.pk).update(available=MAX_STOCK_PER_LEVEL)
    with transaction.atomic():
        assert count(stock_return(level_id=level.pk, quantity=3)) == MAX_STOCK_PER_LEVEL + 3


def test_stock_return_with_a_limit_refuses_going_over_it_and_changes_nothing():
    level = level_of(make_sku(stock=5))
    with transaction.atomic():
        assert count(stock_return(level_id=level.pk, quantity=5, limit=10)) == 10  # exactly up to it
    for quantity in (1, 11, 2**40):
        with pytest.raises(StockLimitExceeded), transaction.atomic():
            stock_return(level_id=level.pk, quantity=quantity, limit=10)
    level.refresh_from_db()
    assert (level.available, level.version) == (10, 1)


def test_stock_never_negative_constraint():
    """The CHECK constraint refuses a negative count even from a writer that skips the services."""
    level = level_of(make_sku(stock=3))
    with pytest.raises(IntegrityError), transaction.atomic():
        StockLevel.objects.filter(pk=level.pk).update(available=-1)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE catalog_stocklevel SET available = available - 4 WHERE id = %s", [level.pk])
    with pytest.raises(IntegrityError), transaction.atomic():
        StockLevel.objects.create(
            sku=level.sku, location=Location.objects.create(shop=level.sku.shop, name="B"), available=-5
        )
    level.refresh_from_db()
    assert level.available == 3


def test_allowance_never_negative_constraint():
    buyer, sku = UserFactory(), make_sku()
    with pytest.raises(IntegrityError), transaction.atomic():
        BuyerAllowance.objects.create(buyer=buyer, key=f"sku:{sku.pk}", units=-1)


# -- allowance_take / allowance_return ------------------------------------------------------


def allowance_units(buyer, sku):
    row = BuyerAllowance.objects.filter(buyer=buyer, key=f"sku:{sku.pk}").first()
    return row.units if row else 0


def test_allowance_take_counts_up_to_the_limit():
    buyer, sku = UserFactory(), make_sku(per_buyer_limit=3)
    with transaction.atomic():
        assert allowance_take(buyer_id=buyer.pk, key=f"sku:{sku.pk}", quantity=1, limit=3) == 1
        assert allowance_take(buyer_id=buyer.pk, key=f"sku:{sku.pk}", quantity=2, limit=3) == 3  # exactly the limit
    assert allowance_units(buyer, sku) == 3


@pytest.mark.parametrize("held, more", [(3, 1), (2, 2), (1, 5)])
def test_allowance_take_refuses_going_over_the_limit(held, more):
    buyer, sku = UserFactory(), make_sku(per_buyer_limit=3)
    with transaction.atomic():
        allowance_take(buyer_id=buyer.pk, key=f"sku:{sku.pk}", quantity=held, limit=3)
    with pytest.raises(BuyerLimitExceeded) as raised, transaction.atomic():
        allowance_take(buyer_id=buyer.pk, key=f"sku:{sku.pk}", quantity=more, limit=3)
    assert raised.value.code == "buyer_limit_exceeded" and raised.value.status == 409
    assert allowance_units(buyer, sku) == held


def test_first_allowance_take_over_the_limit_writes_no_row():
    buyer, sku = UserFactory(), make_sku(per_buyer_limit=2)
    with pytest.raises(BuyerLimitExceeded), transaction.atomic():
        allowance_take(buyer_id=buyer.pk, key=f"sku:{sku.pk}", quantity=3, limit=2)
    assert not BuyerAllowance.objects.exists()


def test_allowances_are_per_buyer_and_per_sku():
    a, b = UserFactory(), UserFactory()
    tee, cap = make_sku(per_buyer_limit=1), make_sku(per_buyer_limit=1)
    with transaction.atomic():
        for buyer in (a, b):
            for sku in (tee, cap):
                assert allowance_take(buyer_id=buyer.pk, key=f"sku:{sku.pk}", quantity=1, limit=1) == 1
    assert BuyerAllowance.objects.count() == 4


def test_allowance_return_frees_units_but_never_below_zero():
    buyer, sku = UserFactory(), make_sku(per_buyer_limit=3)
    with transaction.atomic():
        allowance_take(buyer_id=buyer.pk, key=f"sku:{sku.pk}", quantity=3, limit=3)
        allowance_return(buyer_id=buyer.pk, key=f"sku:{sku.pk}", quantity=2)
    assert allowance_units(buyer, sku) == 1
    with transaction.atomic():
        allowance_return(buyer_id=buyer.pk, key=f"sku:{sku.pk}", quantity=5)  # more than held: ignored
    assert allowance_units(buyer, sku) == 1
    with transaction.atomic():
        assert allowance_take(buyer_id=buyer.pk, key=f"sku:{sku.pk}", quantity=2, limit=3) == 3


# -- location_default -----------------------------------------------------------------------


def test_location_default_is_created_once():
    shop = CreatorFactory().shop
    first = location_default(shop=shop)
    second = location_default(shop=shop)
    assert first.pk == second.pk and first.is_default and first.shop == shop
    assert Location.objects.filter(shop=shop).count() == 1


def test_location_default_is_per_shop():
    a, b = CreatorFactory().shop, CreatorFactory().shop
    assert location_default(shop=a).pk != location_default(shop=b).pk
    assert Location.objects.filter(is_default=True).count() == 2


def test_location_default_returns_an_existing_default_and_ignores_others():
    shop = CreatorFactory().shop
    Location.objects.create(shop=shop, name="Back room")
    studio = Location.objects.create(shop=shop, name="Studio", is_default=True)
    assert location_default(shop=shop) == studio
    assert Location.objects.filter(shop=shop).count() == 2


def test_location_default_survives_a_concurrent_creation(monkeypatch):
    """If another request creates the default between the lookup and the insert, the unique
    constraint refuses the second one and the function answers the winner's row."""
    shop = CreatorFactory().shop
    winner = Location.objects.create(shop=shop, name="Created concurrently", is_default=True)
    real_filter = Location.objects.filter
    calls = {"n": 0}

    def filter_missing_once(*args, **kwargs):
        calls["n"] += 1
        qs = real_filter(*args, **kwargs)
        return qs.none() if calls["n"] == 1 else qs

    monkeypatch.setattr(Location.objects, "filter", filter_missing_once)
    with transaction.atomic():
        assert location_default(shop=shop) == winner
    assert Location.objects.filter(shop=shop).count() == 1


def test_only_one_default_location_per_shop_constraint():
    shop = CreatorFactory().shop
    location_default(shop=shop)
    with pytest.raises(IntegrityError), transaction.atomic():
        Location.objects.create(shop=shop, name="Second default", is_default=True)


# -- product_create -------------------------------------------------------------------------


def test_product_create_uses_the_shops_currency_by_default():
    shop = CreatorFactory().shop
    shop.currency = "GBP"
    shop.save()
    product = product_create(
        shop=shop,
        title="Zine",
        skus=[{"code": "ZINE", "price": Decimal("4.00")}, {"code": "ZINE-US", "price": 5, "currency": "USD"}],
    )
    assert dict(product.skus.values_list("code", "currency")) == {"ZINE": "GBP", "ZINE-US": "USD"}
    assert dict(StockLevel.objects.values_list("sku__code", "available")) == {"ZINE": 0, "ZINE-US": 0}


@pytest.mark.parametrize("codes", [["A", "A"], ["A", "B", "A"]])
def test_product_create_refuses_repeated_codes_and_writes_nothing(codes):
    shop = CreatorFactory().shop
    before = catalog_rows()
    with pytest.raises(DuplicateSkuCode):
        product_create(shop=shop, title="x", skus=[{"code": c, "price": 1} for c in codes])
    assert catalog_rows() == before


def test_product_create_refuses_a_code_taken_in_the_shop_and_writes_nothing():
    sku = make_sku(code="TAKEN")
    before = catalog_rows()
    with pytest.raises(DuplicateSkuCode) as raised:
        product_create(shop=sku.shop, title="x", skus=[{"code": "FRESH", "price": 1}, {"code": "TAKEN", "price": 1}])
    assert raised.value.code == "duplicate_sku_code" and raised.value.status == 409
    assert catalog_rows() == before


def test_product_create_is_all_or_nothing(monkeypatch):
    """A failure after some rows were written (here: the second SKU's event) rolls back all."""
    shop = CreatorFactory().shop
    real_emit = services.stock_changed_emit
    calls = {"n": 0}

    def failing_emit(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("event store down")
        real_emit(**kwargs)

    monkeypatch.setattr(services, "stock_changed_emit", failing_emit)
    before = catalog_rows()
    with pytest.raises(RuntimeError):
        product_create(shop=shop, title="x", skus=[{"code": "A", "price": 1}, {"code": "B", "price": 1}])
    assert catalog_rows() == before


def test_product_create_turns_a_lost_race_on_the_code_into_duplicate_sku_code(monkeypatch):
    """The "code taken?" check can pass while a concurrent request inserts the code (here:
    the check is made to miss it); the unique constraint still refuses it, as DuplicateSkuCode."""
    sku = make_sku(code="RACE")
    real_filter = SKU.objects.filter
    calls = {"n": 0}

    def filter_missing_once(*args, **kwargs):
        calls["n"] += 1
        qs = real_filter(*args, **kwargs)
        return qs.none() if calls["n"] == 1 else qs

    monkeypatch.setattr(SKU.objects, "filter", filter_missing_once)
    before = catalog_rows()
    with pytest.raises(DuplicateSkuCode):
        product_create(shop=sku.shop, title="x", skus=[{"code": "FRESH", "price": 1}, {"code": "RACE", "price": 1}])
    assert calls["n"] == 1
    assert catalog_rows() == before


def test_product_create_lets_other_integrity_errors_through():
    shop = CreatorFactory().shop
    before = catalog_rows()
    with pytest.raises(IntegrityError):  # the per-buyer limit CHECK, not a taken code
        product_create(shop=shop, title="x", skus=[{"code": "A", "price": 1, "per_buyer_limit": 0}])
    assert catalog_rows() == before


def test_product_create_refuses_opening_stock_above_the_limit():
    shop = CreatorFactory().shop
    before = catalog_rows()
    with pytest.raises(StockLimitExceeded):
        product_create(shop=shop, title="x", skus=[{"code": "A", "price": 1, "stock": MAX_STOCK_PER_LEVEL + 1}])
    assert catalog_rows() == before


# -- stock_adjust ---------------------------------------------------------------------------


def stock_events():
    return [e.payload for e in OutboxEvent.objects.filter(type="stock.changed").order_by("id")]


def test_stock_adjust_set_add_and_remove_emit_absolute_counts():
    sku = make_sku(stock=10)
    assert stock_adjust(sku=sku, set_to=4).available == 4
    assert stock_adjust(sku=sku, add=3).available == 7
    assert stock_adjust(sku=sku, add=-7).available == 0
    assert level_of(sku).available == 0
    assert [e["available"] for e in stock_events()] == [10, 4, 7, 0]
    assert all(e["sku"] == sku.code and e["sku_id"] == sku.pk and e["shop"] == sku.shop_id for e in stock_events())


def test_stock_adjust_removing_too_much_changes_nothing():
    sku = make_sku(stock=2)
    before = catalog_rows()
    with pytest.raises(InsufficientStock):
        stock_adjust(sku=sku, add=-3)
    assert catalog_rows() == before
    assert level_of(sku).available == 2


@pytest.mark.parametrize("kwargs", [{}, {"set_to": 1, "add": 1}, {"set_to": 0, "add": 0}])
def test_stock_adjust_wants_exactly_one_of_set_or_add(kwargs):
    sku = make_sku(stock=2)
    before = catalog_rows()
    with pytest.raises(InvalidStockChange):
        stock_adjust(sku=sku, **kwargs)
    assert catalog_rows() == before


def test_stock_adjust_refuses_another_shops_location():
    sku, theirs = make_sku(stock=2), make_sku(stock=2)
    their_location = level_of(theirs).location
    before = catalog_rows()
    with pytest.raises(LocationNotFound):
        stock_adjust(sku=sku, location=their_location, set_to=50)
    assert catalog_rows() == before


def test_stock_adjust_at_a_new_location_creates_its_level():
    sku = make_sku(stock=2)
    venue = Location.objects.create(shop=sku.shop, name="Venue", kind=Location.Kind.VENUE)
    level = stock_adjust(sku=sku, location=venue, add=6)
    assert level.location == venue and level.available == 6
    assert StockLevel.objects.get(sku=sku, location=venue).available == 6
    assert level_of(sku).available == 2
    assert stock_events()[-1]["level"] == level.pk and stock_events()[-1]["available"] == 6


def test_stock_adjust_set_to_a_negative_count_is_refused_by_the_database():
    sku = make_sku(stock=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        stock_adjust(sku=sku, set_to=-1)
    assert level_of(sku).available == 2


def test_stock_adjust_adds_up_to_the_limit_and_no_further():
    sku = make_sku(stock=0)
    assert stock_adjust(sku=sku, add=MAX_STOCK_PER_LEVEL - 1).available == MAX_STOCK_PER_LEVEL - 1
    assert stock_adjust(sku=sku, add=1).available == MAX_STOCK_PER_LEVEL
    before = catalog_rows()
    for add in (1, MAX_STOCK_PER_LEVEL, 2**31):
        with pytest.raises(StockLimitExceeded) as raised:
            stock_adjust(sku=sku, add=add)
        assert raised.value.code == "stock_limit_exceeded" and raised.value.status == 409
    assert catalog_rows() == before
    assert level_of(sku).available == MAX_STOCK_PER_LEVEL


def test_stock_adjust_refuses_setting_above_the_limit():
    sku = make_sku(stock=2)
    assert stock_adjust(sku=sku, set_to=MAX_STOCK_PER_LEVEL).available == MAX_STOCK_PER_LEVEL
    before = catalog_rows()
    with pytest.raises(StockLimitExceeded):
        stock_adjust(sku=sku, set_to=MAX_STOCK_PER_LEVEL + 1)
    assert catalog_rows() == before
    assert level_of(sku).available == MAX_STOCK_PER_LEVEL


# -- sku_set_price ---------------------------------------------------------------------------


def test_sku_set_price_emits_price_changed():
    sku = make_sku(price="10.00")
    updated = sku_set_price(sku_id=sku.pk, price=Decimal("12.50"), source="tracker")
    assert updated.price == Decimal("12.50")
    sku.refresh_from_db()
    assert sku.price == Decimal("12.50")
    event = OutboxEvent.objects.get(type="price.changed")
    assert {k: event.payload[k] for k in ("sku", "price", "old_price", "currency", "source")} == {
        "sku": sku.code,
        "price": "12.50",
        "old_price": "10.00",
        "currency": "USD",
        "source": "tracker",
    }


def test_sku_set_price_to_the_same_price_is_a_no_op():
    sku = make_sku(price="10.00")
    before = catalog_rows()
    sku_set_price(sku_id=sku.pk, price=Decimal("10.00"))
    assert catalog_rows() == before
    assert not OutboxEvent.objects.filter(type="price.changed").exists()


# -- selectors ------------------------------------------------------------------------------


def test_sku_for_buy_scopes_by_shop_id_or_slug():
    a, b = make_sku(code="TEE", price="1.00"), make_sku(code="TEE", price="2.00")
    assert sku_for_buy(code="TEE", shop_id=a.shop_id)["id"] == a.pk
    assert sku_for_buy(code="TEE", shop_slug=b.shop.slug)["id"] == b.pk
    row = sku_for_buy(code="TEE", shop_id=a.shop_id)
    assert row["level_id"] == level_of(a).pk and row["available"] == 20 and row["display_title"] == "Product TEE"


def test_sku_public_has_the_contract_keys():
    make_sku(code="CAP", price="3.00", stock=7)
    assert sku_public(code="CAP") == {
        "code": "CAP",
        "title": "Product CAP",
        "price": Decimal("3.00"),
        "currency": "USD",
        "available": 7,
        "per_buyer_limit": None,
    }


# -- under real concurrency (PostgreSQL) ------------------------------------------------------


def run_in_threads(fn, n):
    """Run fn() in n threads released together; each thread closes its own connection."""
    barrier = threading.Barrier(n)

    def call(_):
        try:
            barrier.wait(timeout=10)
            try:
                return fn()
            except Exception as exc:  # report, don't raise: the test compares outcomes
                return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_stock_never_negative_under_concurrent_removals():
    sku = make_sku(stock=10)

    def remove_one():
        return stock_adjust(sku=SKU.objects.get(pk=sku.pk), add=-1).available

    outcomes = run_in_threads(remove_one, 25)
    done = [o for o in outcomes if isinstance(o, int)]
    refused = [o for o in outcomes if isinstance(o, InsufficientStock)]
    assert len(done) == 10 and len(refused) == 15, outcomes
    assert sorted(done) == list(range(10))  # every count from 9 down to 0 was seen exactly once
    assert level_of(sku).available == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_one_code_give_one_product_and_one_duplicate_error(monkeypatch):
    shop = CreatorFactory().shop
    location_default(shop=shop)  # exists already, so only the SKU insert races
    gate = threading.Barrier(2)
    real_location_default = services.location_default

    def location_default_after_both_checked(**kwargs):
        # Both requests have passed the "code taken?" check when they get here.
        gate.wait(timeout=10)
        return real_location_default(**kwargs)

    monkeypatch.setattr(services, "location_default", location_default_after_both_checked)

    def create():
        return product_create(shop=shop, title="Race", skus=[{"code": "RACE", "price": 1}])

    outcomes = run_in_threads(create, 2)
    assert sum(isinstance(o, Product) for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, DuplicateSkuCode) for o in outcomes) == 1, outcomes
    assert SKU.objects.filter(code="RACE").count() == 1
