"""POST /api/v1/quotes/ and price_quote: the shape, the invariants "a buy right after a
quote charges the quote's total" and "the pin's price is the quote's", bad input."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.catalog.models import StockLevel
from apps.orders.models import Order
from apps.pricing.offers import Context
from apps.pricing.selectors import price_quote
from apps.streams.models import FlashDeal
from apps.streams.selectors import stream_snapshot
from tests.factories import CreatorFactory, make_buyer, make_sku

from .conftest import post_buy, post_quote

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE")


def test_anonymous_quote_of_one_sku_has_the_contract_shape_and_writes_nothing(client, plain_sku):
    with CaptureQueriesContext(connection) as queries:
        response = post_quote(client, {"sku": "MUG", "quantity": 2, "shop": plain_sku.shop.slug})
    assert response.status_code == 200, response.content
    assert response.json() == {
        "lines": [
            {
                "sku": "MUG",
                "title": "Product MUG",
                "quantity": 2,
                "unit_price": "8.50",
                "adjustments": [],
                "total": "17.00",
            }
        ],
        "subtotal": "17.00",
        "discount": "0.00",
        "shipping": {"fee": "0.00", "adjustments": [], "total": "0.00"},
        "total": "17.00",
        "currency": "USD",
        "suggestions": [],
    }
    assert not [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITES)]


def test_open_deal_replaces_the_list_price_as_an_adjustment(client, stream):
    response = post_quote(
        client, {"lines": [{"sku": "TEE-DEAL", "quantity": 2}, {"sku": "MUG", "quantity": 1}], "stream": stream.pk}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    deal_line, mug_line = body["lines"]
    assert deal_line["unit_price"] == "20.00"
    assert deal_line["adjustments"] == [
        {"source": "deal", "id": stream.deal.pk, "label": "Flash deal", "amount": "-16.00"}
    ]
    assert deal_line["total"] == "24.00" and mug_line["total"] == "8.50" and mug_line["adjustments"] == []
    assert (body["subtotal"], body["discount"], body["total"]) == ("48.50", "16.00", "32.50")


def test_without_the_stream_the_deal_does_not_apply(client, stream):
    body = post_quote(client, {"sku": "TEE-DEAL", "shop": stream.shop.slug}).json()
    assert body["total"] == "20.00" and body["lines"][0]["adjustments"] == []


@pytest.mark.parametrize(
    ("sku", "in_stream"),
    [("MUG", False), ("MUG", True), ("TEE-DEAL", True), ("TEE-DEAL", False)],
    ids=["no-stream", "stream-no-deal", "open-deal", "deal-sku-outside-stream"],
)
def test_a_buy_right_after_a_quote_charges_the_quotes_total(client, stream, sku, in_stream):
    buyer = make_buyer()
    client.force_login(buyer)
    body = {"sku": sku, "quantity": 2, **({"stream": stream.pk} if in_stream else {"shop": stream.shop.slug})}
    quote = post_quote(client, body)
    assert quote.status_code == 200, quote.content
    bought = post_buy(client, body, key=f"quote-then-buy-{sku}")
    assert bought.status_code == 201, bought.content
    assert bought.json()["total"] == quote.json()["total"]
    # Line by line too: the same list price, the same adjustments, the same total.
    keys = ("sku", "title", "quantity", "unit_price", "adjustments", "total")
    assert [{k: ln[k] for k in keys} for ln in bought.json()["lines"]] == quote.json()["lines"]
    assert {k: bought.json()[k] for k in ("subtotal", "discount", "currency")} == {
        k: quote.json()[k] for k in ("subtotal", "discount", "currency")
    }


@pytest.mark.parametrize(
    "order", [("MUG", "TEE-DEAL", "CAP"), ("CAP", "MUG", "TEE-DEAL")], ids=["deal-line-second", "deal-line-last"]
)
def test_a_three_line_buy_right_after_a_quote_charges_the_quotes_total(client, stream, shop, order):
    make_sku(shop, code="CAP", price="7.25", stock=10, per_buyer_limit=5)
    quantities = {"MUG": 3, "TEE-DEAL": 2, "CAP": 4}
    body = {"lines": [{"sku": code, "quantity": quantities[code]} for code in order], "stream": stream.pk}
    buyer = make_buyer()
    client.force_login(buyer)
    quote = post_quote(client, body)
    assert quote.status_code == 200, quote.content
    assert quote.json()["total"] == "78.50"  # 3 x 8.50 + 2 x 12.00 (the deal) + 4 x 7.25
    bought = post_buy(client, body, key=f"three-lines-{order[0]}")
    assert bought.status_code == 201, bought.content
    assert bought.json()["total"] == quote.json()["total"]
    keys = ("sku", "title", "quantity", "unit_price", "adjustments", "total")
    assert [{k: ln[k] for k in keys} for ln in bought.json()["lines"]] == quote.json()["lines"]
    assert [ln["sku"] for ln in bought.json()["lines"]] == list(order)
    assert {k: bought.json()[k] for k in ("subtotal", "discount", "currency")} == {
        k: quote.json()[k] for k in ("subtotal", "discount", "currency")
    }
    # ... and that is what was charged: the order's total, its authorisation at the gateway.
    order_row = Order.objects.get(pk=bought.json()["id"])
    assert str(order_row.total) == quote.json()["total"]
    from apps.orders.payments import TestGateway

    charged = [(op, amount) for op, ref, amount in TestGateway.ledger if ref == order_row.payment_reference]
    assert ("authorize", Decimal(quote.json()["total"])) in charged
    assert {amount for _, amount in charged} == {Decimal(quote.json()["total"])}


def _shown_price(pin: dict) -> Decimal:
    """The price a viewer sees on a pin (static/js/stream.js: the deal's, else the pin's)."""
    return Decimal(pin["deal"]["price"] if pin["deal"] else pin["price"])


def _assert_pins_priced_as_quotes(client, stream):
    """Every pin, as the stream API and the socket's snapshot show it, at the price a quote
    of one unit in the stream gives."""
    api_pins = client.get(f"/api/v1/streams/{stream.pk}/").json()["pins"]
    snapshot_pins = stream_snapshot(stream_id=stream.pk)["pins"]
    assert len(api_pins) == len(snapshot_pins) == 2
    for pin in [*api_pins, *snapshot_pins]:
        quote = price_quote(buyer=None, lines=[(pin["sku"], 1)], context=Context(stream=stream.pk))
        assert _shown_price(pin) == quote.total, pin


def test_the_pins_price_equals_the_quotes(client, stream):
    _assert_pins_priced_as_quotes(client, stream)
    assert _shown_price(client.get(f"/api/v1/streams/{stream.pk}/").json()["pins"][0]) == Decimal("12.00")


def test_a_deal_past_its_closing_time_shows_and_charges_the_list_price(client, stream):
    """The tick closes deals a little after their time; meanwhile the buy already charges
    the list price (its take requires closes_at > now), so the pin must show it too."""
    FlashDeal.objects.filter(pk=stream.deal.pk).update(closes_at=timezone.now() - timedelta(seconds=1))
    _assert_pins_priced_as_quotes(client, stream)
    pin = client.get(f"/api/v1/streams/{stream.pk}/").json()["pins"][0]
    assert pin["deal"] is None and _shown_price(pin) == Decimal("20.00")
    buyer = make_buyer()
    client.force_login(buyer)
    bought = post_buy(client, {"sku": "TEE-DEAL", "quantity": 1, "stream": stream.pk}, key="after-closing-time")
    assert bought.json()["total"] == "20.00"


def test_two_lines_one_short_names_the_sku_and_writes_nothing(client, stream):
    with CaptureQueriesContext(connection) as queries:
        response = post_quote(
            client, {"lines": [{"sku": "TEE-DEAL", "quantity": 1}, {"sku": "MUG", "quantity": 11}], "stream": stream.pk}
        )
    assert response.status_code == 409 and response.json()["code"] == "sold_out" and response.json()["sku"] == "MUG"
    assert not [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITES)]


def test_the_deals_units_and_limit_decide_as_the_buy_does(client, stream):
    """The deal has 5 units and 2 per buyer: 3 units are over the limit for anyone; a buyer
    who holds 2 may quote no more; once the deal's units are gone, sold_out."""
    body = {"sku": "TEE-DEAL", "stream": stream.pk}
    over = post_quote(client, {**body, "quantity": 3})
    assert over.status_code == 409 and over.json()["code"] == "buyer_limit_exceeded" and over.json()["limit"] == 2
    buyer = make_buyer()
    client.force_login(buyer)
    assert post_buy(client, {**body, "quantity": 2}, key="take-my-two").status_code == 201
    again = post_quote(client, {**body, "quantity": 1})
    assert again.status_code == 409 and again.json()["code"] == "buyer_limit_exceeded"
    assert post_buy(client, {**body, "quantity": 1}, key="one-more-please").json()["code"] == "buyer_limit_exceeded"
    FlashDeal.objects.filter(pk=stream.deal.pk).update(remaining=1)
    client.force_login(make_buyer())
    short = post_quote(client, {**body, "quantity": 2})
    assert short.status_code == 409 and short.json() == {**short.json(), "code": "sold_out", "sku": "TEE-DEAL"}
    assert post_buy(client, {**body, "quantity": 2}, key="too-many-left").json()["code"] == "sold_out"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"lines": []}, 400, "invalid"),
        ({"lines": [{"sku": f"S{i}", "quantity": 1} for i in range(21)]}, 400, "invalid"),
        ({"lines": [{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 2}]}, 400, "duplicate_sku"),
        ({"lines": [{"sku": "MUG", "quantity": 0}]}, 400, "invalid"),
        ({"sku": "MUG", "quantity": 0}, 400, "invalid"),
        ({"sku": "MUG", "lines": [{"sku": "MUG", "quantity": 1}]}, 400, "invalid"),
        ({}, 400, "invalid"),
        ({"sku": "NOPE"}, 404, "sku_not_found"),
        ({"sku": "MUG", "stream": 999999}, 404, "stream_not_found"),
        ({"sku": "MUG", "coupon": "SAVE10"}, 404, "coupon_not_found"),
        ({"lines": [{"sku": "MUG", "quantity": 1}, {"sku": "OTHER-SHOP", "quantity": 1}]}, 400, "several_shops"),
    ],
    ids=[
        "empty",
        "21-lines",
        "duplicate",
        "line-qty-0",
        "qty-0",
        "sku-and-lines",
        "nothing",
        "unknown",
        "no-stream",
        "coupon",
        "two-shops",
    ],
)
def test_bad_input_is_a_4xx_with_a_code(client, plain_sku, body, status, code):
    make_sku(CreatorFactory().shop, code="OTHER-SHOP")
    response = post_quote(client, body)
    assert (response.status_code, response.json()["code"]) == (status, code), response.content
    if code in ("sku_not_found", "duplicate_sku"):
        assert response.json()["sku"] in ("NOPE", "MUG")


def test_a_code_several_shops_use_is_ambiguous_unless_the_shop_is_named(client, plain_sku):
    make_sku(CreatorFactory().shop, code="MUG", price="3.00")
    response = post_quote(client, {"sku": "MUG"})
    assert (
        response.status_code == 409 and response.json()["code"] == "ambiguous_sku" and response.json()["sku"] == "MUG"
    )
    assert post_quote(client, {"sku": "MUG", "shop": plain_sku.shop.slug}).json()["total"] == "8.50"


def test_a_quote_takes_nothing(client, stream):
    before = (
        StockLevel.objects.get(sku__code="MUG").available,
        FlashDeal.objects.get().remaining,
        Order.objects.count(),
    )
    for _ in range(3):
        assert post_quote(client, {"sku": "TEE-DEAL", "quantity": 2, "stream": stream.pk}).status_code == 200
    after = (
        StockLevel.objects.get(sku__code="MUG").available,
        FlashDeal.objects.get().remaining,
        Order.objects.count(),
    )
    assert before == after


@pytest.mark.parametrize(
    ("price", "stock", "limit", "quantity", "code"),
    [
        ("999999999.00", 50, 1, 20, "amount_too_large"),  # too large AND over the limit
        ("10.00", 0, 1, 5, "buyer_limit_exceeded"),  # over the limit by itself AND no units
        ("10.00", 2, 3, 3, "sold_out"),  # within the limit, not enough units
        ("10.00", 50, 1, 5, "buyer_limit_exceeded"),
    ],
)
def test_a_request_wrong_in_two_ways_gets_the_same_answer_from_quote_and_buy(
    client, price, stock, limit, quantity, code
):
    sku = make_sku(price=price, stock=stock, per_buyer_limit=limit)
    client.force_login(make_buyer())
    body = {"sku": sku.code, "quantity": quantity, "shop": sku.shop.slug}
    quote, buy = post_quote(client, body), post_buy(client, body, key=f"two-ways-{sku.pk}")
    assert (quote.status_code, quote.json()["code"]) == (buy.status_code, buy.json()["code"])
    assert quote.json()["code"] == code


def test_duplicate_lines_in_an_unknown_stream_get_the_same_answer_from_quote_and_buy(client):
    make_sku(code="DUP", stock=5)
    client.force_login(make_buyer())
    body = {"lines": [{"sku": "DUP"}, {"sku": "DUP"}], "stream": 999999}
    quote, buy = post_quote(client, body), post_buy(client, body, key="dup-unknown-stream")
    assert (quote.status_code, quote.json()["code"]) == (buy.status_code, buy.json()["code"])
    assert quote.json()["code"] == "duplicate_sku"


def test_a_buyer_without_card_and_address_hears_so_before_the_limit(client):
    """The v1 buy's order of answers: a buyer who cannot check out yet is told that first
    (not stored: they save a card and retry with the same key), whatever else is wrong."""
    from tests.factories import UserFactory

    sku = make_sku(stock=50, per_buyer_limit=2)
    client.force_login(UserFactory())
    body = {"sku": sku.code, "quantity": 3, "shop": sku.shop.slug}
    response = post_buy(client, body, key="no-card-over-limit")
    assert (response.status_code, response.json()["code"]) == (409, "checkout_incomplete")


@pytest.mark.parametrize("path", ["/api/v1/quotes/", "/api/v1/orders/"])
def test_all_lines_together_may_not_exceed_the_most_units_per_order(client, settings, path):
    settings.ORDER_MAX_QUANTITY = 10
    for code in ("ONE", "TWO"):
        make_sku(code=code, stock=50)
    client.force_login(make_buyer())
    body = {"lines": [{"sku": "ONE", "quantity": 6}, {"sku": "TWO", "quantity": 5}]}
    response = post_buy(client, body, key="too-many-units") if "orders" in path else post_quote(client, body)
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert "lines" in response.json()["errors"]
    assert Order.objects.count() == 0
