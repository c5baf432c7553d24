"""Several lines in one tap (docs/buying.md, "Several lines in one tap"; docs/pricing.md,
"Claims"): bad input is refused with nothing written, a buy takes every line or none, a
decline or the sweeper gives every line back, prices and receipts show each line, and
under real concurrency (PostgreSQL) multi-line buys neither oversell nor deadlock."""

from __future__ import annotations

import base64
import itertools
import json
import random
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from apps.catalog.models import SKU, BuyerAllowance, StockLevel
from apps.orders.models import IdempotencyRecord, Order, OrderLine
from apps.orders.payments import TestGateway
from apps.orders.services import (
    order_place,
    order_refund,
    order_reserve,
    orders_release_expired,
    request_fingerprint,
)
from apps.streams.models import FlashDeal, Stream
from apps.streams.services import deal_open, pin_add, stream_start
from tests.factories import CreatorFactory, StaffFactory, make_buyer, make_sku
from tests.helpers import events_since, last_event_id, run_concurrently

_keys = itertools.count()


def _key(prefix="multi"):
    return f"{prefix}-{next(_keys):06d}"


# -- set-up ----------------------------------------------------------------------------------


@pytest.fixture
def shop(db):
    return CreatorFactory().shop


@pytest.fixture
def deal_sku(shop):
    """The SKU the live stream's flash deal is on: 20.00, 30 units."""
    return make_sku(shop, code="TEE", price="20.00", stock=30)


@pytest.fixture
def plain_sku(shop):
    """A SKU without a deal: 5.00, 10 units, 5 per buyer."""
    return make_sku(shop, code="MUG", price="5.00", stock=10, per_buyer_limit=5)


@pytest.fixture
def live_stream(shop, deal_sku, plain_sku):
    """A live stream of ``shop`` with both SKUs pinned and an open flash deal on
    ``deal_sku``: 12.00, 5 units (taken from the 30 at the location), 2 per buyer."""
    now = timezone.now()
    stream = Stream.objects.create(shop=shop, title="Live", starts_at=now - timedelta(minutes=5))
    pin_add(stream=stream, sku=deal_sku)
    pin_add(stream=stream, sku=plain_sku)
    stream = stream_start(stream=stream, now=now)
    deal = FlashDeal.objects.create(
        stream=stream,
        sku=deal_sku,
        price=Decimal("12.00"),
        quantity=5,
        per_buyer_limit=2,
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(hours=1),
    )
    deal_open(deal=deal)
    return stream


@pytest.fixture
def open_deal(live_stream):
    deal = live_stream.deals.get()
    assert deal.status == FlashDeal.Status.OPEN and deal.remaining == 5
    return deal


def post_buy(client, body, key=None):
    return client.post(
        "/api/v1/orders/",
        json.dumps(body),
        content_type="application/json",
        headers={"Idempotency-Key": key or _key()},
    )


def buy_lines(buyer, lines, *, stream=None, shop=None, key=None):
    """order_place as the API calls it for ``{"lines": [...], "stream"?, "shop"?}``."""
    body = {"lines": [{"sku": code, "quantity": quantity} for code, quantity in lines]}
    if stream is not None:
        body["stream"] = stream
    if shop is not None:
        body["shop"] = shop
    return order_place(
        buyer=buyer,
        lines=list(lines),
        stream_id=stream,
        shop_slug=shop,
        idempotency_key=key or _key(),
        fingerprint=request_fingerprint(body),
    )


def available(sku) -> int:
    return StockLevel.objects.get(sku=sku, location__is_default=True).available


def world() -> dict:
    """Everything a buy may write, apart from the stored answer to a refused key: stock
    rows and deals (with their versions), allowances, orders, lines, outbox events."""
    return {
        "stock": sorted(StockLevel.objects.values_list("pk", "available", "version")),
        "deals": sorted(FlashDeal.objects.values_list("pk", "remaining", "version")),
        "allowances": sorted(BuyerAllowance.objects.values_list("buyer_id", "key", "units")),
        "orders": Order.objects.count(),
        "lines": OrderLine.objects.count(),
        "events": last_event_id(),
    }


# -- 1. bad input: a 4xx with a code, nothing written -----------------------------------------


@pytest.fixture
def catalog(shop):
    """Three SKUs of one shop (one priced in EUR) and one of another shop."""
    return {
        "A": make_sku(shop, code="A-1", price="3.00", stock=5, per_buyer_limit=4),
        "B": make_sku(shop, code="B-1", price="4.00", stock=5),
        "EUR": make_sku(shop, code="E-1", price="4.00", stock=5, currency="EUR"),
        "OTHER": make_sku(CreatorFactory().shop, code="O-1", price="4.00", stock=5),
    }


def _lines(*pairs):
    return [{"sku": code, "quantity": quantity} for code, quantity in pairs]


# (body, status, code, field or sku named): requests refused before anything is priced
# (the serializer) and ones the pricing layer refuses.
BAD_BODIES = {
    "empty": ({"lines": []}, 400, "invalid", "lines"),
    "21-lines": ({"lines": _lines(*[("A-1", 1)] + [(f"X-{i}", 1) for i in range(20)])}, 400, "invalid", "lines"),
    "quantity-0": ({"lines": _lines(("A-1", 1), ("B-1", 0))}, 400, "invalid", "lines"),
    "quantity-over-max": ({"lines": _lines(("A-1", 1), ("B-1", 101))}, 400, "invalid", "lines"),
    "quantity-string": ({"lines": _lines(("A-1", 1), ("B-1", "2"))}, 400, "invalid", "lines"),
    "sku-and-lines": ({"sku": "A-1", "lines": _lines(("B-1", 1))}, 400, "invalid", None),
    "lines-and-quantity": ({"quantity": 2, "lines": _lines(("B-1", 1))}, 400, "invalid", None),
    "lines-not-a-list": ({"lines": {"sku": "A-1", "quantity": 1}}, 400, "invalid", "lines"),
    "duplicate": ({"lines": _lines(("A-1", 1), ("B-1", 1), ("A-1", 2))}, 400, "duplicate_sku", "A-1"),
    "two-shops": ({"lines": _lines(("A-1", 1), ("O-1", 1))}, 400, "several_shops", None),
    "two-currencies": ({"lines": _lines(("A-1", 1), ("E-1", 1))}, 400, "mixed_currencies", None),
    "unknown-sku": ({"lines": _lines(("A-1", 1), ("NOPE", 1))}, 404, "sku_not_found", "NOPE"),
    # "shop": the slug of A-1's shop, filled in by the test.
    "shop-named": ({"lines": _lines(("A-1", 1), ("O-1", 1)), "shop": None}, 404, "sku_not_found", "O-1"),
    "over-limit-alone": ({"lines": _lines(("B-1", 1), ("A-1", 5))}, 409, "buyer_limit_exceeded", "A-1"),
}


@pytest.mark.parametrize(("body", "status", "code", "named"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_multiline_input_is_a_4xx_with_a_code_and_writes_nothing(client, catalog, body, status, code, named):
    if "shop" in body:
        body = {**body, "shop": catalog["A"].shop.slug}
    buyer = make_buyer()
    client.force_login(buyer)
    before = world()
    response = post_buy(client, body, key="bad-input-1")
    assert (response.status_code, response.json()["code"]) == (status, code), response.content
    assert world() == before
    if code == "invalid":
        if named:
            assert named in response.json()["errors"]
        # Refused before the buy began: not even an answer is stored under the key.
        assert not IdempotencyRecord.objects.exists()
    else:
        if named:
            assert response.json()["sku"] == named
        # The buy refused it: the key keeps that answer (docs/buying.md, "Idempotency-Key").
        again = post_buy(client, body, key="bad-input-1")
        assert (again.status_code, again.json()) == (response.status_code, response.json())
        assert again["Idempotent-Replayed"] == "true"
        assert world() == before


# -- 2. all or nothing ------------------------------------------------------------------------


@pytest.fixture
def three_skus(shop):
    """``FIRST`` (plenty, 3 per buyer), ``SHORT`` (2 units, 3 per buyer) and ``LIMITED``
    (plenty, 2 per buyer), made in that order, so their claims come in that order in the
    global order: a refusal of the second or third comes after ``FIRST`` was taken, and
    must undo it."""
    first = make_sku(shop, code="FIRST", price="3.00", stock=10, per_buyer_limit=3)
    short = make_sku(shop, code="SHORT", price="4.00", stock=2, per_buyer_limit=3)
    limited = make_sku(shop, code="LIMITED", price="5.00", stock=10, per_buyer_limit=2)
    levels = [StockLevel.objects.get(sku=sku).pk for sku in (first, short, limited)]
    assert levels == sorted(levels)
    return first, short, limited


all_or_nothing = pytest.mark.parametrize(
    "transactional",
    [False, pytest.param(True, marks=pytest.mark.django_db(transaction=True))],
    ids=["in-test-transaction", "autocommit"],
)


@all_or_nothing
@pytest.mark.parametrize("first_line", ["ok", "short"])
def test_a_short_line_takes_nothing_and_is_named(client, three_skus, transactional, first_line):
    first, short, _ = three_skus
    buyer = make_buyer()
    client.force_login(buyer)
    lines = [("FIRST", 2), ("SHORT", 3)]
    if first_line == "short":
        lines.reverse()
    before = world()
    response = post_buy(client, {"lines": _lines(*lines), "shop": first.shop.slug})
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "sold_out" and response.json()["sku"] == "SHORT"
    assert world() == before
    assert (available(first), available(short)) == (10, 2)
    assert not BuyerAllowance.objects.filter(buyer=buyer).exists()
    # Nothing was held: the same buyer gets both lines in the quantities there are.
    ok = post_buy(client, {"lines": _lines(("SHORT", 2), ("FIRST", 3)), "shop": first.shop.slug})
    assert ok.status_code == 201, ok.content
    assert (available(first), available(short)) == (7, 0)


@all_or_nothing
@pytest.mark.parametrize("first_line", ["ok", "limited"])
def test_a_line_over_the_buyers_limit_takes_nothing_and_is_named(client, three_skus, transactional, first_line):
    """The buyer already holds 1 of LIMITED's 2: a buy of FIRST x2 and LIMITED x2 takes
    both lines' units and FIRST's allowance, then LIMITED's allowance refuses; all of it
    is undone."""
    first, _, limited = three_skus
    buyer = make_buyer()
    client.force_login(buyer)
    assert post_buy(client, {"lines": _lines(("LIMITED", 1)), "shop": first.shop.slug}).status_code == 201
    lines = [("FIRST", 2), ("LIMITED", 2)]
    if first_line == "limited":
        lines.reverse()
    before = world()
    response = post_buy(client, {"lines": _lines(*lines), "shop": first.shop.slug})
    assert response.status_code == 409, response.content
    body = response.json()
    assert (body["code"], body["sku"], body["limit"]) == ("buyer_limit_exceeded", "LIMITED", 2)
    assert world() == before
    assert (available(first), available(limited)) == (10, 9)
    assert dict(BuyerAllowance.objects.filter(buyer=buyer).values_list("key", "units")) == {f"sku:{limited.pk}": 1}


@all_or_nothing
def test_a_stock_line_short_after_a_deal_line_gives_the_deal_back(
    client, live_stream, open_deal, plain_sku, transactional
):
    """The deal's units come first in the global order (source "deal" < "stock"): they and
    the deal's allowance are taken, then the stock line refuses."""
    StockLevel.objects.filter(sku=plain_sku).update(available=3)
    buyer = make_buyer()
    client.force_login(buyer)
    before = world()
    response = post_buy(client, {"lines": _lines(("MUG", 4), ("TEE", 2)), "stream": live_stream.pk})
    assert response.status_code == 409, response.content
    assert (response.json()["code"], response.json()["sku"]) == ("sold_out", "MUG")
    assert world() == before
    open_deal.refresh_from_db()
    assert open_deal.remaining == 5


@all_or_nothing
def test_a_deal_line_short_takes_nothing(client, live_stream, open_deal, plain_sku, transactional):
    FlashDeal.objects.filter(pk=open_deal.pk).update(remaining=1)
    client.force_login(make_buyer())
    before = world()
    response = post_buy(client, {"lines": _lines(("MUG", 2), ("TEE", 2)), "stream": live_stream.pk})
    assert (response.status_code, response.json()["code"], response.json()["sku"]) == (409, "sold_out", "TEE")
    assert world() == before
    assert available(plain_sku) == 10


@all_or_nothing
def test_a_deal_that_closes_between_pricing_and_taking_takes_nothing(
    client, live_stream, open_deal, plain_sku, deal_sku, transactional, monkeypatch
):
    """The lines were priced with the deal, which closes before the claims are taken: 409
    deal_not_open naming the deal's line, and the stock line is not taken either."""
    from apps.orders import services
    from apps.streams.services import deal_close

    priced = services.quote_rows

    def price_then_close(**kwargs):
        quote = priced(**kwargs)
        deal_close(deal=open_deal)
        return quote

    monkeypatch.setattr(services, "quote_rows", price_then_close)
    buyer = make_buyer()
    client.force_login(buyer)
    response = post_buy(client, {"lines": _lines(("MUG", 2), ("TEE", 1)), "stream": live_stream.pk})
    assert (response.status_code, response.json()["code"], response.json()["sku"]) == (409, "deal_not_open", "TEE")
    assert (available(plain_sku), available(deal_sku)) == (10, 30)  # the closed deal's 5 went back
    assert not Order.objects.exists() and not OrderLine.objects.exists()
    assert not BuyerAllowance.objects.filter(buyer=buyer).exists()


@pytest.mark.parametrize("refusal", ["sold_out", "buyer_limit_exceeded"])
def test_a_copy_refused_by_what_its_own_key_took_answers_as_a_retry(shop, monkeypatch, refusal):
    """Two copies of one request under one key: the first buys between the second's read
    and its claims, and takes what the second then finds gone (X's last units, or X's
    per-buyer allowance). The second answers as a retry would - the first's order - and
    stores no answer of its own under the key (docs/buying.md, "Idempotency-Key")."""
    from apps.orders import services

    x = make_sku(shop, code="X", price="2.00", stock=3 if refusal == "sold_out" else 10, per_buyer_limit=5)
    make_sku(shop, code="Y", price="3.00", stock=10)
    buyer = make_buyer()
    lines = [("Y", 1), ("X", 3)]
    priced = services.quote_rows
    first = []

    def first_copy_buys_meanwhile(**kwargs):
        quote = priced(**kwargs)
        if not first:
            first.append(None)  # before the call: the first copy prices through here too
            first[0] = buy_lines(buyer, lines, shop=shop.slug, key="one-key-two-copies")
        return quote

    monkeypatch.setattr(services, "quote_rows", first_copy_buys_meanwhile)
    second = buy_lines(buyer, lines, shop=shop.slug, key="one-key-two-copies")
    assert first[0].status == 201, first[0].body
    assert (second.status, second.body) == (201, first[0].body), second.body
    assert second.replayed
    assert not IdempotencyRecord.objects.exists()
    assert Order.objects.count() == 1
    assert BuyerAllowance.objects.get(buyer=buyer, key=f"sku:{x.pk}").units == 3


# -- 3. a decline, a dead gateway, the sweeper, a refund: every line given back -------------


def _holdings(buyer, open_deal, plain_sku, deal_sku):
    open_deal.refresh_from_db()
    allowances = dict(BuyerAllowance.objects.filter(buyer=buyer).values_list("key", "units"))
    return {
        "deal": open_deal.remaining,
        "plain": available(plain_sku),
        "deal_sku_location": available(deal_sku),
        "deal_allowance": allowances.get(f"deal:{open_deal.pk}", 0),
        "plain_allowance": allowances.get(f"sku:{plain_sku.pk}", 0),
    }


UNTOUCHED = {"deal": 5, "plain": 10, "deal_sku_location": 25, "deal_allowance": 0, "plain_allowance": 0}


def test_a_declined_card_gives_every_line_and_allowance_back(live_stream, open_deal, plain_sku, deal_sku):
    buyer = make_buyer(token="tok_declined")
    mark = last_event_id()
    outcome = buy_lines(buyer, [("MUG", 3), ("TEE", 2)], stream=live_stream.pk)
    assert outcome.status == 402 and outcome.body["code"] == "payment_declined"
    order = Order.objects.get(buyer=buyer)
    assert order.status == Order.Status.DECLINED and order.lines.count() == 2
    assert _holdings(buyer, open_deal, plain_sku, deal_sku) == UNTOUCHED
    events = events_since(mark)
    assert [e.type for e in events] == ["deal.changed", "stock.changed", "order.declined"]
    assert events[0].payload["remaining"] == 5 and events[1].payload["available"] == 10
    # The allowances really are free again: the whole limit of both can be bought.
    buyer.payment_methods.update(token="tok_ok")
    again = buy_lines(buyer, [("TEE", 2), ("MUG", 5)], stream=live_stream.pk)
    assert again.status == 201, again.body
    assert _holdings(buyer, open_deal, plain_sku, deal_sku) == {
        **UNTOUCHED,
        "deal": 3,
        "plain": 5,
        "deal_allowance": 2,
        "plain_allowance": 5,
    }


def test_an_unreachable_gateway_gives_every_line_and_allowance_back(
    live_stream, open_deal, plain_sku, deal_sku, monkeypatch
):
    def unreachable(self, **kwargs):
        raise ConnectionError("gateway down")

    monkeypatch.setattr(TestGateway, "authorize", unreachable)
    buyer = make_buyer()
    outcome = buy_lines(buyer, [("TEE", 1), ("MUG", 4)], stream=live_stream.pk)
    assert outcome.status == 503 and outcome.body["code"] == "payment_gateway_unavailable"
    assert Order.objects.get(buyer=buyer).status == Order.Status.FAILED
    assert _holdings(buyer, open_deal, plain_sku, deal_sku) == UNTOUCHED


def test_the_sweeper_gives_every_line_of_an_abandoned_order_back(live_stream, open_deal, plain_sku, deal_sku):
    buyer = make_buyer()
    order = order_reserve(
        buyer=buyer, lines=[("MUG", 4), ("TEE", 2)], idempotency_key="abandoned-multi", stream_id=live_stream.pk
    )
    assert _holdings(buyer, open_deal, plain_sku, deal_sku) == {
        **UNTOUCHED,
        "deal": 3,
        "plain": 6,
        "deal_allowance": 2,
        "plain_allowance": 4,
    }
    assert orders_release_expired() == 0  # not old yet
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    mark = last_event_id()
    assert orders_release_expired() == 1
    order.refresh_from_db()
    assert order.status == Order.Status.EXPIRED
    assert _holdings(buyer, open_deal, plain_sku, deal_sku) == UNTOUCHED
    assert [e.type for e in events_since(mark)] == ["deal.changed", "stock.changed", "order.expired"]
    assert orders_release_expired() == 0


def test_a_restocking_refund_gives_every_line_back_but_keeps_the_allowances(
    live_stream, open_deal, plain_sku, deal_sku
):
    buyer = make_buyer()
    outcome = buy_lines(buyer, [("MUG", 2), ("TEE", 2)], stream=live_stream.pk)
    assert outcome.status == 201, outcome.body
    order_refund(order=outcome.order, actor=StaffFactory(), restock=True, reason="Returned")
    assert _holdings(buyer, open_deal, plain_sku, deal_sku) == {
        **UNTOUCHED,
        "deal_allowance": 2,
        "plain_allowance": 2,
    }


# -- 6. prices on the order and on its receipt --------------------------------------------------


def _receipt_claims(token: str) -> dict:
    """The signed receipt's payload (tests/orders/test_receipts.py verifies the signature)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _assert_consistent(order: dict) -> None:
    """Each line's total is its list price x quantity plus its adjustments; the order's
    subtotal, discount and total add up from its lines (docs/buying.md, "Prices")."""
    for line in order["lines"]:
        adjustments = sum((Decimal(a["amount"]) for a in line["adjustments"]), Decimal("0"))
        assert Decimal(line["unit_price"]) * line["quantity"] + adjustments == Decimal(line["total"]), line
    subtotal = sum((Decimal(ln["unit_price"]) * ln["quantity"] for ln in order["lines"]), Decimal("0"))
    total = sum((Decimal(ln["total"]) for ln in order["lines"]), Decimal("0"))
    assert Decimal(order["subtotal"]) == subtotal
    assert Decimal(order["total"]) == total
    assert Decimal(order["discount"]) == subtotal - total


def test_the_receipt_and_the_order_list_each_line_with_its_adjustments(client, live_stream, open_deal):
    from joserfc import jws
    from joserfc.jwk import KeySet

    buyer = make_buyer()
    client.force_login(buyer)
    response = post_buy(client, {"lines": _lines(("MUG", 3), ("TEE", 2)), "stream": live_stream.pk})
    assert response.status_code == 201, response.content
    order = response.json()
    expected_lines = [
        {
            "sku": "MUG",
            "title": "Product MUG",
            "quantity": 3,
            "unit_price": "5.00",
            "adjustments": [],
            "total": "15.00",
        },
        {
            "sku": "TEE",
            "title": "Product TEE",
            "quantity": 2,
            "unit_price": "20.00",
            "adjustments": [{"source": "deal", "id": open_deal.pk, "label": "Flash deal", "amount": "-16.00"}],
            "total": "24.00",
        },
    ]
    assert order["lines"] == expected_lines
    assert (order["subtotal"], order["discount"], order["total"]) == ("55.00", "16.00", "39.00")
    _assert_consistent(order)

    claims = _receipt_claims(order["receipt"])
    assert claims["items"] == expected_lines
    assert (claims["order"], claims["total"], claims["currency"]) == (order["id"], "39.00", "USD")
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())
    assert json.loads(jws.deserialize_compact(order["receipt"], keys, algorithms=["EdDSA"]).payload) == claims

    shown = client.get(f"/api/v1/orders/{order['id']}/").json()
    assert shown == order
    _assert_consistent(shown)
    assert client.get("/api/v1/orders/").json()[0] == order
    assert Order.objects.get(pk=order["id"]).total == Decimal("39.00")


def test_a_replayed_multiline_buy_answers_the_same_lines(client, live_stream):
    client.force_login(make_buyer())
    body = {"lines": _lines(("TEE", 1), ("MUG", 2)), "stream": live_stream.pk}
    first = post_buy(client, body, key="replay-multi-1")
    again = post_buy(client, {**body}, key="replay-multi-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    other = post_buy(client, {**body, "lines": list(reversed(body["lines"]))}, key="replay-multi-1")
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_an_orders_lines_keep_the_order_they_were_bought_in(client, live_stream):
    """After a line's row is rewritten (PostgreSQL then returns it last from a plain scan),
    the order, its replay and the list still show the lines as bought."""
    client.force_login(make_buyer())
    body = {"lines": _lines(("MUG", 1), ("TEE", 1)), "stream": live_stream.pk}
    first = post_buy(client, body, key="line-order-1")
    assert first.status_code == 201
    order_id = first.json()["id"]
    earliest = OrderLine.objects.filter(order_id=order_id).order_by("pk").first()
    OrderLine.objects.filter(pk=earliest.pk).update(title=earliest.title)  # a new row version, placed last
    codes = ["MUG", "TEE"]
    with _plain_scans():
        assert [ln["sku"] for ln in client.get(f"/api/v1/orders/{order_id}/").json()["lines"]] == codes
        assert [ln["sku"] for ln in post_buy(client, body, key="line-order-1").json()["lines"]] == codes
        assert [ln["sku"] for ln in client.get("/api/v1/orders/").json()[0]["lines"]] == codes


@contextmanager
def _plain_scans():
    """On PostgreSQL, read tables in their physical order (no index scans), as a large or
    freshly vacuumed table may be read: only an ORDER BY then decides the order."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_indexscan; RESET enable_bitmapscan; RESET enable_indexonlyscan")


# -- 4. under concurrency (PostgreSQL) ----------------------------------------------------------


def service_multi_buy(buyer, lines, stream=None, shop=None):
    outcome = buy_lines(buyer, lines, stream=stream, shop=shop, key=_key("race-multi"))
    return outcome.status, outcome.body


def http_multi_buy(buyer, lines, stream=None, shop=None):
    client = Client()
    client.force_login(buyer)
    body = {"lines": _lines(*lines)}
    body.update({"stream": stream} if stream is not None else {"shop": shop})
    response = post_buy(client, body, key=_key("race-multi-http"))
    return response.status_code, response.json()


def _random_buys(rng, codes, n, *, max_quantity=2):
    """``n`` requests of 2 or 3 distinct lines over ``codes``, each in its own order."""
    out = []
    for _ in range(n):
        picked = rng.sample(codes, rng.choice([2, 3]) if len(codes) > 2 else 2)
        out.append([(code, rng.randint(1, max_quantity)) for code in picked])
    return out


def paid_units(sku) -> int:
    return OrderLine.objects.filter(sku=sku, order__status=Order.Status.PAID).aggregate(n=Sum("quantity"))["n"] or 0


def _assert_answers(requests, results, *, codes=frozenset({"sold_out"})):
    """Every answer is a paid order of exactly the lines asked for, a declined one (402), or
    a 409 with one of ``codes`` naming one of its lines; no 5xx (a deadlock would be one).
    Every order is paid or declined: none is left holding units."""
    for lines, (status, body) in zip(requests, results, strict=True):
        assert status in (201, 402, 409), (status, body)
        if status == 201:
            assert body["status"] == "paid"
            assert [(ln["sku"], ln["quantity"]) for ln in body["lines"]] == list(lines)
        elif status == 402:
            assert body["code"] == "payment_declined", body
        else:
            assert body["code"] in codes, body
            assert body["sku"] in {code for code, _ in lines}, body
    statuses = Counter(status for status, _ in results)
    assert Order.objects.filter(status=Order.Status.PAID).count() == statuses[201]
    assert Order.objects.filter(status=Order.Status.DECLINED).count() == statuses[402]
    assert Order.objects.count() == statuses[201] + statuses[402]


def _assert_lines_match_answers(results):
    """The stored lines are the answered ones: per SKU, the units of 201 answers."""
    answered = Counter()
    for status, body in results:
        if status == 201:
            for line in body["lines"]:
                answered[line["sku"]] += line["quantity"]
    stored = Counter()
    for code, quantity in OrderLine.objects.filter(order__status=Order.Status.PAID).values_list("sku_code", "quantity"):
        stored[code] += quantity
    assert stored == answered


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", [service_multi_buy, http_multi_buy], ids=["service", "http"])
def test_concurrent_multiline_buys_in_any_line_order_never_oversell_or_deadlock(path, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"buy": "100000/min"}}
    shop = CreatorFactory().shop
    initial = {"X": 30, "Y": 25, "Z": 20}
    skus = {code: make_sku(shop, code=code, price="2.00", stock=n) for code, n in initial.items()}
    # A quarter of the buyers' cards are declined: their releases race the others' takes.
    buyers = [make_buyer(token="tok_declined" if i % 4 == 0 else "tok_ok") for i in range(40)]
    rng = random.Random(15)
    requests = _random_buys(rng, list(initial), 200)
    results = run_concurrently(path, [(buyers[i % 40], lines, None, shop.slug) for i, lines in enumerate(requests)])

    _assert_answers(requests, results)
    _assert_lines_match_answers(results)
    for code, sku in skus.items():
        left = available(sku)
        assert left >= 0
        assert paid_units(sku) + left == initial[code], code
    statuses = Counter(status for status, _ in results)
    assert statuses[201] > 0 and statuses[409] > 0  # the rows were contended and ran out
    assert all(
        Decimal(body["total"]) == sum(Decimal("2.00") * ln["quantity"] for ln in body["lines"])
        for status, body in results
        if status == 201
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_multiline_buys_with_a_deal_line_never_oversell_the_deal():
    """200 simultaneous buys in a stream of 2 or 3 lines over X, Y and D (D's flash deal:
    12 units, 2 per buyer), each in its own line order, a quarter of them declined: the
    deal never goes below zero, what it sold is what it lost, allowances match purchases,
    and the location's own units are never touched."""
    creator = CreatorFactory()
    shop = creator.shop
    initial = {"X": 20, "Y": 16}
    skus = {code: make_sku(shop, code=code, price="2.00", stock=n) for code, n in initial.items()}
    deal_sku = make_sku(shop, code="D", price="20.00", stock=20)
    now = timezone.now()
    stream = Stream.objects.create(shop=shop, title="Race", starts_at=now)
    deal = FlashDeal.objects.create(
        stream=stream,
        sku=deal_sku,
        price=Decimal("12.00"),
        quantity=12,
        per_buyer_limit=2,
        opens_at=now,
        closes_at=now + timedelta(hours=1),
    )
    stream_start(stream=stream, now=now)
    deal.refresh_from_db()
    assert deal.status == FlashDeal.Status.OPEN and deal.remaining == 12
    buyers = [make_buyer(token="tok_declined" if i % 4 == 0 else "tok_ok") for i in range(20)]
    rng = random.Random(16)
    requests = _random_buys(rng, ["X", "Y", "D"], 200)
    attempts = [(buyers[i % 20], lines, stream.pk) for i, lines in enumerate(requests)]
    results = run_concurrently(service_multi_buy, attempts)

    _assert_answers(requests, results, codes={"sold_out", "buyer_limit_exceeded"})
    _assert_lines_match_answers(results)
    deal.refresh_from_db()
    sold = (
        OrderLine.objects.filter(unit_source=f"deal:{deal.pk}", order__status=Order.Status.PAID).aggregate(
            n=Sum("quantity")
        )["n"]
        or 0
    )
    assert deal.remaining >= 0
    assert sold == 12 - deal.remaining
    assert sold == paid_units(deal_sku)  # every D line was sold from the deal
    assert available(deal_sku) == 8  # buys in the stream never touch the location
    for code, sku in skus.items():
        assert paid_units(sku) + available(sku) == initial[code], code
    # Each buyer holds under the deal's key exactly what they bought from it, at most 2.
    held = dict(BuyerAllowance.objects.filter(key=f"deal:{deal.pk}").values_list("buyer_id", "units"))
    bought = Counter()
    for buyer_id, quantity in OrderLine.objects.filter(
        unit_source=f"deal:{deal.pk}", order__status=Order.Status.PAID
    ).values_list("order__buyer_id", "quantity"):
        bought[buyer_id] += quantity
    assert {b: n for b, n in held.items() if n} == dict(bought)
    assert max(held.values(), default=0) <= 2
    assert sold > 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_key_sent_many_times_at_once_buys_the_lines_once():
    """20 simultaneous copies of one multi-line request under one Idempotency-Key: one
    order; the copies that took their claims before meeting the key's index give them
    back (their reserve rolls back) and answer as a replay would."""
    shop = CreatorFactory().shop
    x = make_sku(shop, code="X", price="2.00", stock=10, per_buyer_limit=5)
    y = make_sku(shop, code="Y", price="3.00", stock=10)
    buyer = make_buyer()
    lines = [("Y", 2), ("X", 3)]

    def send():
        outcome = buy_lines(buyer, lines, shop=shop.slug, key="one-key-many-times")
        return outcome.status, outcome.body

    results = run_concurrently(send, [() for _ in range(20)])
    assert Order.objects.count() == 1
    order = Order.objects.get()
    assert order.status == Order.Status.PAID
    assert {status for status, _ in results} <= {201, 409}
    assert all(body["id"] == order.pk for status, body in results if status == 201)
    assert all(body["code"] == "idempotency_key_in_flight" for status, body in results if status == 409)
    assert (available(x), available(y)) == (7, 8)
    assert BuyerAllowance.objects.get(buyer=buyer, key=f"sku:{x.pk}").units == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_per_buyer_limits_hold_across_one_buyers_concurrent_multiline_buys():
    """One buyer, 30 simultaneous buys: half of P+R, half of Q+P+R, each in its own line
    order. P allows 3 per buyer, Q 2, R has no limit: exactly 3 buys go through (every
    buy has a P), at most 2 of them with Q."""
    shop = CreatorFactory().shop
    p = make_sku(shop, code="P", price="1.00", stock=100, per_buyer_limit=3)
    q = make_sku(shop, code="Q", price="1.00", stock=100, per_buyer_limit=2)
    r = make_sku(shop, code="R", price="1.00", stock=100)
    buyer = make_buyer()
    rng = random.Random(17)
    requests = []
    for i in range(30):
        lines = [("P", 1), ("R", 1)] + ([("Q", 1)] if i % 2 else [])
        rng.shuffle(lines)
        requests.append(lines)
    results = run_concurrently(service_multi_buy, [(buyer, lines, None, shop.slug) for lines in requests])

    _assert_answers(requests, results, codes={"buyer_limit_exceeded"})
    assert sum(1 for status, _ in results if status == 201) == 3
    held = dict(BuyerAllowance.objects.filter(buyer=buyer).values_list("key", "units"))
    assert held[f"sku:{p.pk}"] == paid_units(p) == 3
    assert held.get(f"sku:{q.pk}", 0) == paid_units(q) <= 2
    assert f"sku:{r.pk}" not in held
    for sku in (p, q, r):
        assert paid_units(sku) + available(sku) == 100
    assert not SKU.objects.filter(stock_levels__available__lt=0).exists()
