"""Flash deals: they open and close on the scheduler's clock, moving units between the
location and the deal; buys in a stream take the deal's price, stock and per-buyer limit;
and the invariants hold under real concurrency (PostgreSQL)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from apps.catalog.models import BuyerAllowance, StockLevel
from apps.orders.models import Order, OrderLine
from apps.orders.payments import TestGateway
from apps.orders.services import order_place, order_release, request_fingerprint
from apps.streams.models import FlashDeal, Stream
from apps.streams.services import deal_close, deal_open, stream_start, streams_tick
from tests.factories import CreatorFactory, make_buyer, make_sku
from tests.helpers import events_since, last_event_id, run_concurrently

_keys = itertools.count()


def available(sku) -> int:
    return StockLevel.objects.get(sku=sku, location__is_default=True).available


def stream_buy(buyer, sku_code, stream_id, quantity=1, key=None):
    """order_place as the API calls it for ``{"sku", "quantity", "stream"}``."""
    key = key or f"deal-{next(_keys):06d}"
    body = {"sku": sku_code, "quantity": quantity, "stream": stream_id}
    return order_place(
        buyer=buyer,
        sku_code=sku_code,
        quantity=quantity,
        stream_id=stream_id,
        idempotency_key=key,
        fingerprint=request_fingerprint(body),
    )


@pytest.fixture
def t0():
    return (timezone.now() + timedelta(days=1)).replace(microsecond=0)


@pytest.fixture
def timed(creator, make_stream, make_deal, t0):
    """A stream starting at t0 and a deal on a 30-unit SKU open t0+10 min .. t0+20 min."""
    sku = make_sku(creator.shop, price="20.00", stock=30)
    stream = make_stream(creator.shop, starts_at=t0, ends_at=t0 + timedelta(hours=2))
    deal = make_deal(stream, sku, opens_at=t0 + timedelta(minutes=10), closes_at=t0 + timedelta(minutes=20), quantity=5)
    return stream, sku, deal


# -- on the clock --------------------------------------------------------------------------


@pytest.mark.django_db
def test_deal_opens_on_time_taking_its_units_from_the_location(timed, t0):
    stream, sku, deal = timed
    opens = t0 + timedelta(minutes=10)
    streams_tick(now=t0)
    stream.refresh_from_db()
    assert stream.status == Stream.Status.LIVE

    mark = last_event_id()
    assert streams_tick(now=opens - timedelta(seconds=1))["opened"] == 0
    deal.refresh_from_db()
    assert deal.status == FlashDeal.Status.SCHEDULED and deal.remaining == 0
    assert available(sku) == 30
    assert events_since(mark) == []

    assert streams_tick(now=opens)["opened"] == 1
    deal.refresh_from_db()
    assert deal.status == FlashDeal.Status.OPEN
    assert deal.remaining == 5
    assert available(sku) == 25

    changed, opened = events_since(mark, "stock.changed", "deal.opened")
    assert changed.type == "stock.changed"
    assert changed.payload["available"] == 25 and changed.payload["sku"] == sku.code
    assert changed.groups == [f"sku.{sku.pk}"]
    assert opened.type == "deal.opened"
    assert opened.groups == [f"stream.{stream.pk}"]
    assert opened.payload["stream"] == stream.pk and opened.payload["sku"] == sku.code
    assert opened.payload["deal_id"] == deal.pk and opened.payload["remaining"] == 5
    assert opened.payload["deal"]["price"] == "12.00"
    assert opened.payload["deal"]["per_buyer_limit"] == 2
    assert opened.payload["deal"]["remaining"] == 5
    assert opened.payload["deal"]["ends_at"] == (t0 + timedelta(minutes=20)).isoformat().replace("+00:00", "Z")

    # Later ticks do not open it twice.
    mark = last_event_id()
    assert streams_tick(now=opens + timedelta(seconds=1))["opened"] == 0
    assert events_since(mark) == []
    assert available(sku) == 25


@pytest.mark.django_db
def test_deal_closes_on_time_giving_back_what_is_left(timed, t0, buyer):
    stream, sku, deal = timed
    closes = t0 + timedelta(minutes=20)
    streams_tick(now=t0)
    streams_tick(now=t0 + timedelta(minutes=10))
    assert stream_buy(buyer, sku.code, stream.pk, quantity=2).status == 201
    deal.refresh_from_db()
    assert deal.remaining == 3 and available(sku) == 25

    mark = last_event_id()
    assert streams_tick(now=closes - timedelta(seconds=1))["closed"] == 0
    deal.refresh_from_db()
    assert deal.status == FlashDeal.Status.OPEN

    assert streams_tick(now=closes)["closed"] == 1
    deal.refresh_from_db()
    assert deal.status == FlashDeal.Status.CLOSED and deal.remaining == 0
    assert available(sku) == 28  # 25 + the 3 unsold; the 2 sold stay sold
    changed, closed = events_since(mark, "stock.changed", "deal.closed")
    assert changed.type == "stock.changed" and changed.payload["available"] == 28
    assert closed.type == "deal.closed"
    assert closed.groups == [f"stream.{stream.pk}"]
    assert closed.payload["deal"] is None and closed.payload["remaining"] == 0
    assert closed.payload["deal_id"] == deal.pk

    mark = last_event_id()
    assert streams_tick(now=closes + timedelta(seconds=1))["closed"] == 0
    assert events_since(mark) == []
    assert available(sku) == 28


@pytest.mark.django_db
def test_deal_opens_with_what_the_location_holds_when_it_is_less(creator, live_stream, make_deal):
    sku = make_sku(creator.shop, stock=3)
    deal = deal_open(deal=make_deal(live_stream, sku, quantity=5))
    assert deal.status == FlashDeal.Status.OPEN and deal.remaining == 3
    assert available(sku) == 0


@pytest.mark.django_db
def test_deal_opens_empty_when_the_location_holds_nothing(creator, live_stream, make_deal):
    sku = make_sku(creator.shop, stock=0)
    mark = last_event_id()
    deal = deal_open(deal=make_deal(live_stream, sku, quantity=5))
    assert deal.status == FlashDeal.Status.OPEN and deal.remaining == 0
    assert available(sku) == 0
    assert [e.type for e in events_since(mark)] == ["deal.opened"]


@pytest.mark.django_db
def test_deal_whose_window_passed_before_it_could_open_is_closed_without_touching_stock(timed, t0):
    _, sku, deal = timed
    streams_tick(now=t0)
    mark = last_event_id()
    streams_tick(now=t0 + timedelta(minutes=25))  # the tick was down from t0+1s to t0+25min
    deal.refresh_from_db()
    assert deal.status == FlashDeal.Status.CLOSED and deal.remaining == 0
    assert available(sku) == 30
    assert events_since(mark, "stock.changed", "deal.opened", "deal.closed") == []


@pytest.mark.django_db
def test_deal_in_a_stream_not_live_waits_for_the_start(creator, make_stream, make_deal, t0):
    sku = make_sku(creator.shop, stock=30)
    stream = make_stream(creator.shop, starts_at=t0 + timedelta(minutes=30))
    deal = make_deal(stream, sku, opens_at=t0 + timedelta(minutes=10), closes_at=t0 + timedelta(hours=1))

    for minute in (10, 20, 29):
        streams_tick(now=t0 + timedelta(minutes=minute))
        deal.refresh_from_db()
        assert deal.status == FlashDeal.Status.SCHEDULED
    assert available(sku) == 30

    streams_tick(now=t0 + timedelta(minutes=30))
    deal.refresh_from_db()
    stream.refresh_from_db()
    assert stream.status == Stream.Status.LIVE
    assert deal.status == FlashDeal.Status.OPEN and deal.remaining == 5
    assert available(sku) == 25


@pytest.mark.django_db
def test_deal_whose_window_passed_while_its_stream_was_scheduled_never_opens(creator, make_stream, make_deal, t0):
    sku = make_sku(creator.shop, stock=30)
    stream = make_stream(creator.shop, starts_at=t0 + timedelta(minutes=30))
    deal = make_deal(stream, sku, opens_at=t0, closes_at=t0 + timedelta(minutes=10))
    streams_tick(now=t0 + timedelta(minutes=30))
    deal.refresh_from_db()
    assert deal.status == FlashDeal.Status.CLOSED
    assert available(sku) == 30


@pytest.mark.django_db
def test_deal_on_another_location_takes_and_returns_there(creator, live_stream, make_deal):
    from apps.catalog.models import Location
    from apps.catalog.services import stock_adjust

    sku = make_sku(creator.shop, stock=10)
    popup = Location.objects.create(shop=creator.shop, name="Pop-up")
    stock_adjust(sku=sku, location=popup, set_to=4)
    deal = deal_open(deal=make_deal(live_stream, sku, quantity=3, location=popup))
    assert deal.remaining == 3
    assert StockLevel.objects.get(sku=sku, location=popup).available == 1
    assert available(sku) == 10
    deal_close(deal=deal)
    assert StockLevel.objects.get(sku=sku, location=popup).available == 4
    assert available(sku) == 10


@pytest.mark.django_db
def test_tick_survives_two_overlapping_deals_on_one_sku(creator, make_stream, make_deal, t0):
    first_sku = make_sku(creator.shop, stock=30)
    other_sku = make_sku(creator.shop, stock=30)
    stream = make_stream(creator.shop, starts_at=t0)
    make_deal(stream, first_sku, opens_at=t0 + timedelta(minutes=1), closes_at=t0 + timedelta(minutes=20))
    overlapping = make_deal(stream, first_sku, opens_at=t0 + timedelta(minutes=2), closes_at=t0 + timedelta(minutes=30))
    other = make_deal(stream, other_sku, opens_at=t0 + timedelta(minutes=3), closes_at=t0 + timedelta(minutes=30))
    streams_tick(now=t0)
    streams_tick(now=t0 + timedelta(minutes=1))

    streams_tick(now=t0 + timedelta(minutes=3))  # must not raise

    other.refresh_from_db()
    overlapping.refresh_from_db()
    assert other.status == FlashDeal.Status.OPEN
    assert overlapping.status == FlashDeal.Status.SCHEDULED  # waits for the first to close
    assert FlashDeal.objects.filter(sku=first_sku, status=FlashDeal.Status.OPEN).count() == 1
    assert available(first_sku) == 25

    streams_tick(now=t0 + timedelta(minutes=20))  # the first closes, the second takes over
    overlapping.refresh_from_db()
    assert overlapping.status == FlashDeal.Status.OPEN and overlapping.remaining == 5
    assert available(first_sku) == 25


# -- buying in a stream --------------------------------------------------------------------


@pytest.mark.django_db
def test_buy_in_stream_gets_the_deal_price_and_takes_from_the_deal(live_stream, open_deal, deal_sku, buyer):
    assert available(deal_sku) == 25
    outcome = stream_buy(buyer, deal_sku.code, live_stream.pk, quantity=2)
    assert outcome.status == 201, outcome.body
    assert outcome.body["total"] == "24.00"
    # The line shows the list price and the deal's adjustment (docs/buying.md, "Prices").
    line = outcome.body["lines"][0]
    assert line["unit_price"] == str(deal_sku.price) and line["total"] == "24.00"
    assert line["adjustments"] == [
        {"source": "deal", "id": open_deal.pk, "label": "Flash deal", "amount": str((12 - deal_sku.price) * 2)}
    ]
    open_deal.refresh_from_db()
    assert open_deal.remaining == 3
    assert available(deal_sku) == 25  # the location is not touched: the units were set aside
    order = Order.objects.get(pk=outcome.body["id"])
    assert order.stream_id == live_stream.pk and order.status == Order.Status.PAID
    assert order.lines.get().unit_source == f"deal:{open_deal.pk}"


@pytest.mark.django_db
def test_buy_in_stream_emits_deal_changed_and_order_placed_to_the_stream(live_stream, open_deal, deal_sku, buyer):
    opened_version = open_deal.version
    mark = last_event_id()
    outcome = stream_buy(buyer, deal_sku.code, live_stream.pk)
    assert outcome.status == 201
    changed, placed = events_since(mark, "deal.changed", "order.placed", "stock.changed")
    assert changed.type == "deal.changed"
    assert changed.groups == [f"stream.{live_stream.pk}"]
    assert changed.payload["remaining"] == 4 and changed.payload["deal"]["remaining"] == 4
    assert changed.payload["deal_id"] == open_deal.pk and changed.payload["sku"] == deal_sku.code
    assert changed.payload["version"] > opened_version
    assert placed.type == "order.placed"
    assert f"stream.{live_stream.pk}" in placed.groups
    assert f"shop.{live_stream.shop_id}" in placed.groups
    assert placed.payload["buyer_name"] == "Ada"
    assert placed.payload["stream"] == live_stream.pk
    assert placed.payload["lines"] == [
        {
            "sku": deal_sku.code,
            "sku_id": deal_sku.pk,
            "quantity": 1,
            "unit_price": str(deal_sku.price),
            "adjustments": [
                {"source": "deal", "id": open_deal.pk, "label": "Flash deal", "amount": str(12 - deal_sku.price)}
            ],
            "total": "12.00",
        }
    ]

    mark = last_event_id()
    assert stream_buy(make_buyer(), deal_sku.code, live_stream.pk).status == 201
    [again] = events_since(mark, "deal.changed")
    assert again.payload["remaining"] == 3
    assert again.payload["version"] > changed.payload["version"]


@pytest.mark.django_db
def test_buyer_without_display_name_is_anonymous_in_the_ticker(live_stream, deal_sku):
    shy = make_buyer(display_name="")
    mark = last_event_id()
    assert stream_buy(shy, deal_sku.code, live_stream.pk).status == 201
    [placed] = events_since(mark, "order.placed")
    assert placed.payload["buyer_name"] is None
    assert shy.email not in str(placed.payload)


@pytest.mark.django_db
def test_deal_per_buyer_limit(live_stream, open_deal, deal_sku, buyer):
    assert stream_buy(buyer, deal_sku.code, live_stream.pk, quantity=3).body["code"] == "buyer_limit_exceeded"
    assert stream_buy(buyer, deal_sku.code, live_stream.pk).status == 201
    assert stream_buy(buyer, deal_sku.code, live_stream.pk).status == 201
    third = stream_buy(buyer, deal_sku.code, live_stream.pk)
    assert third.status == 409 and third.body["code"] == "buyer_limit_exceeded"
    open_deal.refresh_from_db()
    assert open_deal.remaining == 3
    assert Order.objects.filter(buyer=buyer).count() == 2
    # The limit is per buyer: someone else still gets the deal.
    assert stream_buy(make_buyer(), deal_sku.code, live_stream.pk, quantity=2).status == 201


@pytest.mark.django_db
def test_sku_without_a_deal_in_the_stream_sells_at_the_normal_price(live_stream, plain_sku, buyer):
    outcome = stream_buy(buyer, plain_sku.code, live_stream.pk, quantity=2)
    assert outcome.status == 201 and outcome.body["total"] == "10.00"
    assert available(plain_sku) == 8
    line = OrderLine.objects.get(order_id=outcome.body["id"])
    assert line.unit_source == "" and line.order.stream_id == live_stream.pk


@pytest.mark.django_db
def test_deal_applies_only_to_buys_in_its_stream(live_stream, open_deal, deal_sku, buyer):
    body = {"sku": deal_sku.code, "quantity": 1}
    outcome = order_place(
        buyer=buyer,
        sku_code=deal_sku.code,
        quantity=1,
        idempotency_key="no-stream-1",
        fingerprint=request_fingerprint(body),
    )
    assert outcome.status == 201 and outcome.body["total"] == "20.00"
    assert available(deal_sku) == 24
    open_deal.refresh_from_db()
    assert open_deal.remaining == 5


@pytest.mark.django_db
def test_deal_applies_only_in_its_own_stream(creator, live_stream, open_deal, deal_sku, make_stream, buyer):
    other_stream = stream_start(stream=make_stream(creator.shop, starts_at=timezone.now()))
    outcome = stream_buy(buyer, deal_sku.code, other_stream.pk)
    assert outcome.status == 201 and outcome.body["total"] == "20.00"
    open_deal.refresh_from_db()
    assert open_deal.remaining == 5


@pytest.mark.django_db
def test_unknown_stream_is_404_and_nothing_is_taken(live_stream, deal_sku, buyer):
    outcome = stream_buy(buyer, deal_sku.code, 987654)
    assert outcome.status == 404 and outcome.body["code"] == "stream_not_found"
    assert not Order.objects.exists()
    assert available(deal_sku) == 25


@pytest.mark.django_db
def test_sku_of_another_shop_in_a_stream_is_404(live_stream, buyer):
    foreign = make_sku(CreatorFactory().shop, stock=5)
    outcome = stream_buy(buyer, foreign.code, live_stream.pk)
    assert outcome.status == 404 and outcome.body["code"] == "sku_not_found"
    assert available(foreign) == 5


@pytest.mark.django_db
def test_declined_card_gives_the_units_back_to_the_open_deal(live_stream, open_deal, deal_sku):
    declined = make_buyer(token="tok_declined")
    mark = last_event_id()
    outcome = stream_buy(declined, deal_sku.code, live_stream.pk, quantity=2)
    assert outcome.status == 402 and outcome.body["code"] == "payment_declined"
    open_deal.refresh_from_db()
    assert open_deal.status == FlashDeal.Status.OPEN and open_deal.remaining == 5
    assert available(deal_sku) == 25
    assert BuyerAllowance.objects.get(buyer=declined, key=f"deal:{open_deal.pk}").units == 0
    assert Order.objects.get().status == Order.Status.DECLINED
    [changed] = events_since(mark, "deal.changed")
    assert changed.payload["remaining"] == 5
    assert events_since(mark, "order.placed") == []
    # The allowance was given back too: the buyer can still use the whole limit.
    ok = make_buyer()
    declined.payment_methods.update(token="tok_ok")
    assert stream_buy(declined, deal_sku.code, live_stream.pk, quantity=2).status == 201
    assert stream_buy(ok, deal_sku.code, live_stream.pk, quantity=2).status == 201


@pytest.mark.django_db
def test_declined_card_after_the_deal_closed_gives_the_units_to_the_location(
    live_stream, open_deal, deal_sku, monkeypatch
):
    """The deal closes while the card is being authorised; the decline then returns the
    reserved units to the location (the deal gave the rest back when it closed)."""
    declined = make_buyer(token="tok_declined")
    real_authorize = TestGateway.authorize

    def close_then_authorize(self, **kwargs):
        deal_close(deal=open_deal)
        return real_authorize(self, **kwargs)

    monkeypatch.setattr(TestGateway, "authorize", close_then_authorize)
    outcome = stream_buy(declined, deal_sku.code, live_stream.pk, quantity=2)
    assert outcome.status == 402
    open_deal.refresh_from_db()
    assert open_deal.status == FlashDeal.Status.CLOSED and open_deal.remaining == 0
    assert available(deal_sku) == 30  # 25 + 3 at closing + 2 from the declined order
    assert BuyerAllowance.objects.get(buyer=declined, key=f"deal:{open_deal.pk}").units == 0


@pytest.mark.django_db
def test_release_after_the_deal_closed_returns_to_the_location(live_stream, open_deal, deal_sku, buyer):
    from apps.orders.services import order_reserve

    order = order_reserve(
        buyer=buyer, lines=[(deal_sku.code, 2)], idempotency_key="abandoned-1", stream_id=live_stream.pk
    )
    open_deal.refresh_from_db()
    assert open_deal.remaining == 3
    deal_close(deal=open_deal)
    assert available(deal_sku) == 28
    mark = last_event_id()
    assert order_release(order_id=order.pk, to_status=Order.Status.EXPIRED) is True
    assert available(deal_sku) == 30
    open_deal.refresh_from_db()
    assert open_deal.remaining == 0 and open_deal.status == FlashDeal.Status.CLOSED
    [changed] = events_since(mark, "stock.changed")
    assert changed.payload["available"] == 30


@pytest.mark.django_db
def test_sold_out_deal_is_409_and_does_not_fall_back_to_the_location(live_stream, open_deal, deal_sku):
    for quantity in (2, 2, 1):
        assert stream_buy(make_buyer(), deal_sku.code, live_stream.pk, quantity=quantity).status == 201
    open_deal.refresh_from_db()
    assert open_deal.remaining == 0
    late = make_buyer()
    outcome = stream_buy(late, deal_sku.code, live_stream.pk)
    assert outcome.status == 409 and outcome.body["code"] == "sold_out"
    assert available(deal_sku) == 25
    assert not Order.objects.filter(buyer=late).exists()
    assert BuyerAllowance.objects.filter(buyer=late, units__gt=0).count() == 0


@pytest.mark.django_db
def test_after_the_deal_closed_the_normal_price_applies_again(live_stream, open_deal, deal_sku, buyer):
    assert stream_buy(buyer, deal_sku.code, live_stream.pk).body["total"] == "12.00"
    deal_close(deal=open_deal)
    assert available(deal_sku) == 29
    outcome = stream_buy(buyer, deal_sku.code, live_stream.pk, quantity=2)
    assert outcome.status == 201 and outcome.body["total"] == "40.00"
    assert available(deal_sku) == 27
    assert OrderLine.objects.get(order_id=outcome.body["id"]).unit_source == ""


@pytest.mark.django_db
def test_deal_past_closing_time_but_not_yet_ticked_sells_at_the_normal_price(live_stream, open_deal, deal_sku, buyer):
    """Between closes_at and the next tick the deal row still says open; the buy must not
    sell at the deal price after the deal's end, nor out of the deal's units: it is a
    normal buy."""
    FlashDeal.objects.filter(pk=open_deal.pk).update(
        opens_at=timezone.now() - timedelta(minutes=10), closes_at=timezone.now() - timedelta(seconds=1)
    )
    outcome = stream_buy(buyer, deal_sku.code, live_stream.pk)
    assert outcome.status == 201 and outcome.body["total"] == "20.00"
    open_deal.refresh_from_db()
    assert open_deal.remaining == 5
    assert Order.objects.get().lines.get().unit_source == ""


@pytest.mark.django_db
def test_buy_in_stream_over_http(client, live_stream, open_deal, deal_sku, buyer):
    client.force_login(buyer)

    def post(body, key):
        return client.post("/api/v1/orders/", body, content_type="application/json", headers={"Idempotency-Key": key})

    response = post({"sku": deal_sku.code, "quantity": 1, "stream": live_stream.pk}, "http-deal-1")
    assert response.status_code == 201, response.content
    assert response.json()["total"] == "12.00"

    response = post({"sku": deal_sku.code, "quantity": 1, "stream": 987654}, "http-deal-2")
    assert response.status_code == 404 and response.json()["code"] == "stream_not_found"

    response = post({"sku": deal_sku.code, "quantity": 1, "stream": str(live_stream.pk)}, "http-deal-3")
    assert response.status_code == 400 and response.json()["code"] == "invalid"

    response = post({"sku": deal_sku.code, "quantity": 2, "stream": live_stream.pk}, "http-deal-4")
    assert response.status_code == 409 and response.json()["code"] == "buyer_limit_exceeded"
    open_deal.refresh_from_db()
    assert open_deal.remaining == 4


# -- under concurrency (PostgreSQL) --------------------------------------------------------


def service_stream_buy(buyer, sku_code, stream_id):
    outcome = stream_buy(buyer, sku_code, stream_id)
    return outcome.status, outcome.body


def http_stream_buy(buyer, sku_code, stream_id):
    client = Client()
    client.force_login(buyer)
    response = client.post(
        "/api/v1/orders/",
        {"sku": sku_code, "quantity": 1, "stream": stream_id},
        content_type="application/json",
        headers={"Idempotency-Key": f"race-deal-{next(_keys):06d}"},
    )
    return response.status_code, response.json()


def _live_deal(*, quantity, per_buyer_limit, stock=100):
    creator = CreatorFactory()
    sku = make_sku(creator.shop, price="20.00", stock=stock)
    now = timezone.now()
    stream = Stream.objects.create(shop=creator.shop, title="Race", starts_at=now)
    deal = FlashDeal.objects.create(
        stream=stream,
        sku=sku,
        price=Decimal("12.00"),
        quantity=quantity,
        per_buyer_limit=per_buyer_limit,
        opens_at=now,
        closes_at=now + timedelta(hours=1),
    )
    stream_start(stream=stream, now=now)
    deal.refresh_from_db()
    assert deal.status == FlashDeal.Status.OPEN and deal.remaining == quantity
    return stream, sku, deal


def sold_from(deal) -> int:
    paid = OrderLine.objects.filter(unit_source=f"deal:{deal.pk}", order__status=Order.Status.PAID)
    return paid.aggregate(n=Sum("quantity"))["n"] or 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_deal_per_buyer_limit_holds_under_concurrency():
    stream, sku, deal = _live_deal(quantity=50, per_buyer_limit=2)
    buyer = make_buyer()
    results = run_concurrently(service_stream_buy, [(buyer, sku.code, stream.pk) for _ in range(20)])
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 2
    assert all(body["code"] == "buyer_limit_exceeded" for status, body in results if status != 201)
    deal.refresh_from_db()
    assert deal.remaining == 48
    assert sold_from(deal) == 2
    assert BuyerAllowance.objects.get(buyer=buyer, key=f"deal:{deal.pk}").units == 2
    assert available(sku) == 50  # buys in the stream never touched the location
    assert not Order.objects.exclude(status=Order.Status.PAID).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", [service_stream_buy, http_stream_buy], ids=["service", "http"])
def test_deal_never_oversells_under_concurrency(path, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"buy": "100000/min"}}
    stream, sku, deal = _live_deal(quantity=20, per_buyer_limit=3)
    buyers = [make_buyer() for _ in range(50)]
    results = run_concurrently(path, [(buyers[i % len(buyers)], sku.code, stream.pk) for i in range(200)])
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 20
    assert set(statuses) <= {201, 409}
    assert all(body["code"] in {"sold_out", "buyer_limit_exceeded"} for status, body in results if status == 409)
    assert all(body["total"] == "12.00" for status, body in results if status == 201)
    deal.refresh_from_db()
    assert deal.remaining == 0
    assert sold_from(deal) == 20
    assert available(sku) == 80
    assert not Order.objects.exclude(status=Order.Status.PAID).exists()
    assert not FlashDeal.objects.filter(remaining__lt=0).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_units_are_conserved_when_the_deal_closes_amid_buys_and_declines():
    """Buys (half of them declined) race the deal's closing: every unit ends up sold, back at
    the location, or nowhere else; nothing is left reserved and nothing goes negative."""
    stream, sku, deal = _live_deal(quantity=20, per_buyer_limit=None, stock=100)
    good = [make_buyer() for _ in range(15)]
    bad = [make_buyer(token="tok_declined") for _ in range(15)]

    def act(kind, buyer=None):
        if kind == "close":
            deal_close(deal=deal)
            return "closed", {}
        return service_stream_buy(buyer, sku.code, stream.pk)

    attempts = [("buy", (good if i % 2 else bad)[i % 15]) for i in range(60)]
    attempts.insert(30, ("close",))
    results = run_concurrently(act, attempts)

    deal.refresh_from_db()
    assert deal.status == FlashDeal.Status.CLOSED and deal.remaining == 0
    sold = OrderLine.objects.filter(sku=sku, order__status=Order.Status.PAID).aggregate(n=Sum("quantity"))["n"] or 0
    assert sold + available(sku) == 100
    assert not Order.objects.filter(status=Order.Status.RESERVED).exists()
    assert {status for status, _ in results} <= {"closed", 201, 402, 409}
    assert sold == sum(1 for status, _ in results if status == 201)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_overlapping_ticks_start_and_open_once():
    """Beat may run ticks on top of each other: each step locks and re-checks, so the stream
    starts once and the deal takes its units once."""
    creator = CreatorFactory()
    sku = make_sku(creator.shop, stock=30)
    t = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    stream = Stream.objects.create(shop=creator.shop, title="Ticks", starts_at=t)
    deal = FlashDeal.objects.create(
        stream=stream, sku=sku, price=Decimal("1.00"), quantity=5, opens_at=t, closes_at=t + timedelta(minutes=5)
    )
    mark = last_event_id()
    run_concurrently(lambda: streams_tick(now=t), [() for _ in range(10)])
    stream.refresh_from_db()
    deal.refresh_from_db()
    assert stream.status == Stream.Status.LIVE
    assert deal.status == FlashDeal.Status.OPEN and deal.remaining == 5
    assert available(sku) == 25
    assert len(events_since(mark, "stream.started")) == 1
    assert len(events_since(mark, "deal.opened")) == 1

    run_concurrently(lambda: streams_tick(now=t + timedelta(minutes=5)), [() for _ in range(10)])
    deal.refresh_from_db()
    assert deal.status == FlashDeal.Status.CLOSED and deal.remaining == 0
    assert available(sku) == 30
    assert len(events_since(mark, "deal.closed")) == 1


@pytest.mark.django_db
def test_deal_without_its_own_limit_keeps_the_skus_limit(live_stream, plain_sku, make_deal, buyer):
    """A deal with no per-buyer limit does not lift the SKU's own limit inside the stream."""
    from apps.catalog.models import SKU

    SKU.objects.filter(pk=plain_sku.pk).update(per_buyer_limit=1)
    deal = make_deal(live_stream, plain_sku, per_buyer_limit=None)
    deal_open(deal=deal)
    assert stream_buy(buyer, plain_sku.code, live_stream.pk).status == 201
    second = stream_buy(buyer, plain_sku.code, live_stream.pk)
    assert second.status == 409 and second.body["code"] == "buyer_limit_exceeded"
    line = OrderLine.objects.get()
    assert line.unit_source == f"deal:{deal.pk}" and line.allowance_key == f"sku:{plain_sku.pk}"


def test_refund_with_restock_gives_deal_units_back_where_they_came_from(creator, live_stream, make_deal, buyer):
    """A refunded deal line's units go back to the open deal (it sells them on at the deal
    price), and after the deal closed to the deal's location, not the default one."""
    from apps.catalog.models import Location
    from apps.catalog.services import stock_adjust
    from apps.orders.services import order_refund
    from tests.factories import StaffFactory

    sku = make_sku(creator.shop, stock=10, price="20.00")
    popup = Location.objects.create(shop=creator.shop, name="Pop-up")
    stock_adjust(sku=sku, location=popup, set_to=6)
    deal = deal_open(deal=make_deal(live_stream, sku, quantity=5, location=popup))
    first = stream_buy(buyer, sku.code, live_stream.pk, quantity=1).order
    second = stream_buy(buyer, sku.code, live_stream.pk, quantity=1, key="deal-refund-2").order
    deal.refresh_from_db()
    assert deal.remaining == 3

    order_refund(order=first, actor=StaffFactory(), restock=True, reason="returned")
    deal.refresh_from_db()
    assert deal.remaining == 4  # back into the open deal
    deal_close(deal=deal)
    assert StockLevel.objects.get(sku=sku, location=popup).available == 1 + 4

    order_refund(order=second, actor=StaffFactory(), restock=True, reason="returned")
    assert StockLevel.objects.get(sku=sku, location=popup).available == 6  # to the deal's location
    assert available(sku) == 10  # the default location never gave these units
