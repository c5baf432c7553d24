"""The stacking policy (apps/pricing/policy.py, docs/pricing.md "Stacking") on offers as
the coupon, perk and bundle providers to come will return them, and the registry."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.pricing.offers import Kind, Line, Offer
from apps.pricing.policy import price_lines, unit_price_now
from apps.pricing.registry import offer_provider, unregister

D = Decimal
TEE, MUG = Line(1, "TEE", 2, D("20.00")), Line(2, "MUG", 1, D("8.50"))


def offer(source, id, kind, value, sku_id=None):
    return Offer(source=source, id=id, label=f"{source} {id}", kind=kind, value=D(value), sku_id=sku_id)


def totals(priced):
    return [str(pl.total) for pl in priced]


def test_a_deal_price_replaces_the_list_price_of_its_sku_only():
    priced = price_lines([TEE, MUG], [offer("deal", 7, Kind.PRICE, "12.00", sku_id=1)])
    assert totals(priced) == ["24.00", "8.50"]
    assert [(a.source, a.id, a.amount) for a in priced[0].adjustments] == [("deal", 7, D("-16.00"))]


def test_a_bundle_price_wins_over_a_deal_and_keeps_coupons_off_its_line():
    offers = [
        offer("deal", 7, Kind.PRICE, "12.00", sku_id=1),
        offer("bundle", 3, Kind.PRICE, "15.00", sku_id=1),
        offer("coupon", 9, Kind.PERCENT_OFF, "10"),
    ]
    tee, mug = price_lines([TEE, MUG], offers)
    assert [a.source for a in tee.adjustments] == ["bundle"] and tee.total == D("30.00")
    assert [a.source for a in mug.adjustments] == ["coupon"] and mug.total == D("7.65")


def test_at_most_one_coupon_the_one_that_takes_off_most():
    offers = [offer("coupon", 1, Kind.AMOUNT_OFF, "5.00"), offer("coupon", 2, Kind.PERCENT_OFF, "20")]
    priced = price_lines([TEE, MUG], offers)
    assert {a.id for pl in priced for a in pl.adjustments} == {2}
    assert totals(priced) == ["32.00", "6.80"]


def test_perks_apply_last_on_what_the_line_costs_after_deals_and_coupon():
    offers = [
        offer("perk", 4, Kind.PERCENT_OFF, "50", sku_id=1),
        offer("deal", 7, Kind.PRICE, "12.00", sku_id=1),
        offer("coupon", 9, Kind.AMOUNT_OFF, "4.00", sku_id=1),
    ]
    (tee,) = price_lines([TEE], offers)
    assert [(a.source, a.amount) for a in tee.adjustments] == [
        ("deal", D("-16.00")),
        ("coupon", D("-4.00")),
        ("perk", D("-10.00")),
    ]


def test_no_line_goes_below_zero_and_an_amount_off_carries_to_the_next_line():
    priced = price_lines([MUG, TEE], [offer("coupon", 1, Kind.AMOUNT_OFF, "10.00")])
    assert totals(priced) == ["0.00", "38.50"]
    (mug,) = price_lines([MUG], [offer("perk", 1, Kind.AMOUNT_OFF, "100.00"), offer("perk", 2, Kind.PERCENT_OFF, "10")])
    assert mug.total == D("0.00") and [a.id for a in mug.adjustments] == [1]


def test_unit_price_now_is_the_quotes_price_of_one_unit():
    deal = offer("deal", 7, Kind.PRICE, "12.00", sku_id=1)
    assert unit_price_now(unit_price=D("20.00"), sku_id=1, offers=[deal]) == (D("12.00"), deal)
    assert unit_price_now(unit_price=D("20.00"), sku_id=1, offers=[]) == (D("20.00"), None)


def test_two_providers_for_one_source_are_refused():
    def first(*, buyer, lines, context):
        return []

    def second(*, buyer, lines, context):
        return []

    offer_provider("test-source")(first)
    try:
        offer_provider("test-source")(first)  # the same function again: fine (module reloads)
        with pytest.raises(ValueError, match="test-source"):
            offer_provider("test-source")(second)
    finally:
        unregister("test-source")
