"""On-site stock (``GET /api/v1/venues/{id}/stock/``), bundle rules (services, events,
admin) and the bundle price split (docs/geofences.md, docs/pricing.md)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from apps.catalog.bundles import bundle_totals, bundle_unit_prices
from apps.catalog.exceptions import InvalidBundle
from apps.catalog.models import BundleItem, BundleRule, Location
from apps.catalog.services import bundle_rule_delete, bundle_rule_save, sku_set_price
from tests.bundle_helpers import make_bundle, make_venue
from tests.factories import CreatorFactory, StaffFactory, make_sku
from tests.helpers import captured_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    return CreatorFactory().shop


# -- on-site stock ---------------------------------------------------------------------------


def test_venue_stock_lists_the_venues_own_rows_of_active_skus(client, shop):
    tee, mug, gone = make_sku(shop, code="TEE"), make_sku(shop, code="MUG"), make_sku(shop, code="OLD")
    make_sku(shop, code="WAREHOUSE-ONLY")
    venue = make_venue(shop, stock={tee: 4, mug: 0, gone: 3})
    gone.is_active = False
    gone.save()
    response = client.get(f"/api/v1/venues/{venue.pk}/stock/")
    assert response.status_code == 200
    assert response.json() == {"stock": {"MUG": 0, "TEE": 4}}


@pytest.mark.parametrize("which", ["unknown", "warehouse", "huge"])
def test_venue_stock_of_no_venue_is_404(client, shop, which):
    warehouse = Location.objects.create(shop=shop, name="Back room")
    venue_id = {"unknown": 999_999, "warehouse": warehouse.pk, "huge": 2**40}[which]
    response = client.get(f"/api/v1/venues/{venue_id}/stock/")
    assert response.status_code == 404
    assert response.json()["code"] == "venue_not_found"


# -- the split -----------------------------------------------------------------------------------


def test_a_bundle_price_is_split_by_list_price_with_the_remainder_on_the_anchor():
    prices = bundle_unit_prices(
        list_prices=[Decimal("10.00"), Decimal("10.00"), Decimal("10.00")], price=Decimal("20.00"), percent=None
    )
    assert prices == [Decimal("6.66"), Decimal("6.67"), Decimal("6.67")]  # 6.67 x 3 is 20.01: -0.01 on the anchor
    assert bundle_unit_prices(
        list_prices=[Decimal("30.00"), Decimal("15.00")], price=Decimal("39.00"), percent=None
    ) == [
        Decimal("26.00"),
        Decimal("13.00"),
    ]


def test_percent_off_each_line_rounds_half_up():
    prices = bundle_unit_prices(list_prices=[Decimal("0.05"), Decimal("19.99")], price=None, percent=Decimal("10"))
    assert prices == [Decimal("0.05"), Decimal("17.99")]  # 0.045 -> 0.05, 17.991 -> 17.99


def test_the_split_always_sums_exactly_to_the_bundle_price():
    """A property over many random bundles: the shares add up to the bundle price to the
    cent, none is negative, each is in cents."""
    rng = random.Random(16)
    for _ in range(5000):
        lines = [Decimal(rng.randint(0, 20000)) / 100 for _ in range(rng.randint(2, 6))]
        price = Decimal(rng.randint(0, 40000)) / 100
        shares = bundle_unit_prices(list_prices=lines, price=price, percent=None)
        assert sum(shares) == price, (lines, price, shares)
        assert all(s >= 0 and s == s.quantize(Decimal("0.01")) for s in shares), (lines, price, shares)
        totals = bundle_totals(list_prices=lines, price=price, percent=None)
        assert totals["saving"] == sum(lines) - price


# -- rules: services, events ---------------------------------------------------------------------


def test_saving_a_bundle_emits_it_as_storefronts_show_it(shop):
    tee, cap = make_sku(shop, code="TEE", price="30.00"), make_sku(shop, code="CAP", price="15.00")
    venue = make_venue(shop, stock={tee: 3})
    with captured_events() as events:
        rule = make_bundle(shop, tee, [cap], price="39.00", venue=venue, threshold=2, label="Tee + cap")
    ((_, payload, groups),) = events.of("bundle.created")
    assert groups == [f"sku.{tee.pk}", f"shop.{shop.pk}"]
    assert payload == {
        "bundle": rule.pk,
        "shop": shop.pk,
        "label": "Tee + cap",
        "anchor": "TEE",
        "anchor_id": tee.pk,
        "skus": ["TEE", "CAP"],
        "titles": ["Product TEE", "Product CAP"],
        "price": "39.00",
        "list_price": "45.00",
        "saving": "6.00",
        "currency": "USD",
        "trigger": "low_stock",
        "threshold": 2,
        "venue": venue.pk,
        "is_active": True,
    }
    assert list(rule.items.values_list("sku__code", flat=True)) == ["CAP"]


def test_a_price_change_re_prices_its_bundles_live(shop):
    """A price-tracking webhook changes prices through sku_set_price: every bundle the SKU
    is part of goes out again with its new price (bundle.updated to its anchor's group)."""
    tee, cap = make_sku(shop, code="TEE", price="30.00"), make_sku(shop, code="CAP", price="15.00")
    rule = make_bundle(shop, tee, [cap], percent="10")
    with captured_events() as events:
        sku_set_price(sku_id=cap.pk, price=Decimal("25.00"), source="webhook:1")
    assert [t for t, _, _ in events.of("price.changed", "bundle.updated")] == ["price.changed", "bundle.updated"]
    ((_, payload, groups),) = events.of("bundle.updated")
    assert (payload["bundle"], payload["price"], payload["list_price"], payload["saving"]) == (
        rule.pk,
        "49.50",
        "55.00",
        "5.50",
    )
    assert f"sku.{tee.pk}" in groups


def test_moving_the_anchor_tells_both_anchors_and_deleting_tells_the_anchor(shop):
    tee, cap, mug = make_sku(shop, code="TEE"), make_sku(shop, code="CAP"), make_sku(shop, code="MUG")
    rule = make_bundle(shop, tee, [cap], price="12.00")
    rule.anchor = mug
    with captured_events() as events:
        bundle_rule_save(rule=rule, items=[cap])
    ((_, payload, groups),) = events.of("bundle.updated")
    assert groups == [f"sku.{mug.pk}", f"sku.{tee.pk}", f"shop.{shop.pk}"] and payload["anchor"] == "MUG"
    rule_id = rule.pk
    with captured_events() as events:
        bundle_rule_delete(rule=rule)
    assert events.of("bundle.deleted") == [
        (
            "bundle.deleted",
            {"bundle": rule_id, "shop": shop.pk, "anchor_id": mug.pk},
            [f"sku.{mug.pk}", f"shop.{shop.pk}"],
        )
    ]
    assert not BundleRule.objects.exists() and not BundleItem.objects.exists()


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda r, o: setattr(r, "percent", Decimal("5")), "price"),  # both a price and a percent
        (lambda r, o: setattr(r, "price", None), "price"),  # neither
        (lambda r, o: setattr(r, "anchor", o["foreign"]), "anchor"),
        (lambda r, o: o["items"].append(o["foreign"]), "items"),
        (lambda r, o: o["items"].append(r.anchor), "items"),
        (lambda r, o: o["items"].clear(), "items"),
        (lambda r, o: setattr(r, "trigger", BundleRule.Trigger.LOW_STOCK), "threshold"),
        (lambda r, o: setattr(r, "threshold", 3), "trigger"),
    ],
)
def test_a_bad_rule_is_refused_with_a_field_error_and_nothing_written(shop, change, field):
    tee, cap = make_sku(shop, code="TEE"), make_sku(shop, code="CAP")
    rule = BundleRule(shop=shop, label="B", anchor=tee, price=Decimal("9.00"))
    options = {"foreign": make_sku(code="ELSEWHERE"), "items": [cap]}
    change(rule, options)
    with captured_events() as events, pytest.raises(InvalidBundle) as refused:
        bundle_rule_save(rule=rule, items=options["items"])
    assert field in refused.value.details["errors"]
    assert not BundleRule.objects.exists() and list(events) == []


def test_the_database_refuses_a_price_and_a_percent_together(shop):
    from django.db import IntegrityError, transaction

    tee = make_sku(shop, code="TEE")
    with pytest.raises(IntegrityError), transaction.atomic():
        BundleRule.objects.create(shop=shop, label="B", anchor=tee, price=Decimal("1.00"), percent=Decimal("5"))


# -- admin ------------------------------------------------------------------------------------------


def test_a_creator_adds_a_bundle_in_the_admin_with_only_their_skus_and_venues(client, shop):
    tee, cap = make_sku(shop, code="TEE", price="30.00"), make_sku(shop, code="CAP", price="15.00")
    venue = make_venue(shop, stock={tee: 5})
    foreign = make_sku(code="NOT-MINE")
    foreign_venue = make_venue(foreign.shop, name="Theirs")
    client.force_login(shop.owner)
    page = client.get("/admin/catalog/bundlerule/add/").content.decode()
    assert "TEE" in page and "NOT-MINE" not in page and "Theirs" not in page
    data = {
        "label": "Tee + cap",
        "anchor": tee.pk,
        "items": [cap.pk],
        "price": "39.00",
        "percent": "",
        "trigger": "low_stock",
        "threshold": "2",
        "venue": venue.pk,
        "is_active": "on",
    }
    with captured_events() as events:
        response = client.post("/admin/catalog/bundlerule/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = BundleRule.objects.get()
    assert (rule.shop, rule.anchor, list(rule.items.values_list("sku", flat=True))) == (shop, tee, [cap.pk])
    assert [t for t, _, _ in events] == ["bundle.created"]
    # Someone else's SKU or venue cannot be chosen; a missing threshold is a field error.
    for bad in ({"items": [foreign.pk]}, {"venue": foreign_venue.pk}, {"threshold": ""}, {"percent": "10"}):
        response = client.post("/admin/catalog/bundlerule/add/", {**data, **bad})
        assert response.status_code == 200
        assert response.context["adminform"].form.errors, bad
    assert BundleRule.objects.count() == 1


def test_a_creator_sees_only_their_shops_bundles(client, shop):
    tee, cap = make_sku(shop, code="TEE"), make_sku(shop, code="CAP")
    mine = make_bundle(shop, tee, [cap], price="5.00", label="Mine")
    other = CreatorFactory().shop
    theirs = make_bundle(other, make_sku(other, code="X"), [make_sku(other, code="Y")], price="5.00", label="Theirs")
    client.force_login(shop.owner)
    page = client.get("/admin/catalog/bundlerule/").content.decode()
    assert "Mine" in page and "Theirs" not in page
    assert client.get(f"/admin/catalog/bundlerule/{theirs.pk}/change/").status_code in (302, 403, 404)
    client.force_login(StaffFactory())
    page = client.get("/admin/catalog/bundlerule/").content.decode()
    assert "Mine" in page and "Theirs" in page
    assert mine.pk
