"""Sold out from memory (creatorcommerce/soldout.py, apps/orders/soldout.py; docs/buying.md,
"Sold out from memory"): once a process knows a buy's stock row or deal is at zero, the buy
is answered 409 sold_out on the event loop with no database statement and no pool thread;
a restock or release clears it; a stale memory never sells a unit the database does not
give, and never answers for a key that may have bought.

Every request goes through the whole ASGI app (creatorcommerce.asgi.application), as under
daphne, against PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.catalog.models import StockLevel
from apps.catalog.services import stock_adjust
from apps.orders import soldout as orders_soldout
from apps.orders.models import IdempotencyRecord, Order
from apps.streams.models import FlashDeal, Stream
from apps.streams.services import deal_close, deal_open, pin_add, stream_start
from creatorcommerce import admission
from creatorcommerce.soldout import memory
from creatorcommerce.spine import processes
from tests.factories import CreatorFactory, make_buyer, make_sku
from tests.overload.asgi import call, session_token

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.anyio]


def key() -> str:
    return f"soldout-{uuid.uuid4()}"


async def buy(token: str, body: dict, idempotency_key: str | None = None, **headers):
    headers = {"X-Session-Token": token, "Idempotency-Key": idempotency_key or key(), **headers}
    return await call("/api/v1/orders/", "POST", headers=headers, body=body)


@pytest.fixture
def shop(db):
    return CreatorFactory().shop


@pytest.fixture
def token(db):
    return session_token(make_buyer())


def level_of(sku) -> StockLevel:
    return StockLevel.objects.get(sku=sku, location__is_default=True)


def buys_sold_out() -> float:
    from prometheus_client import generate_latest

    from creatorcommerce.metrics import scrape_registry
    from tests.helpers import parse_scrape

    return parse_scrape(generate_latest(scrape_registry()).decode()).value("cc_buys_total", outcome="sold_out")


async def test_a_sku_known_at_zero_is_answered_without_the_database(shop, token, all_queries, hops, close_db_after):
    sku = await sync_to_async(make_sku)(shop, stock=1)
    body = {"sku": sku.code, "quantity": 1, "shop": shop.slug}
    first = await buy(token, body)
    assert first.status == 201  # took the last unit: its stock.changed(0) is in memory

    all_queries.statements.clear()
    hops["n"] = 0
    sold_out_before = buys_sold_out()
    answer = await buy(token, body)
    assert answer.status == 409
    assert buys_sold_out() - sold_out_before == 1  # counted in cc_buys_total though no view saw it
    assert answer.json() == {"code": "sold_out", "message": "Not enough stock left.", "sku": sku.code}
    assert len(all_queries) == 0 and hops["n"] == 0  # no statement, no pool thread
    assert "idempotent-replayed" not in answer.headers
    assert admission.stats()["answered_early"] == {"sold_out": 1}

    # The database's own answer has the same shape.
    await sync_to_async(memory().forget)()
    from_database = await buy(token, body)
    assert from_database.status == 409 and from_database.json() == answer.json()
    assert len(all_queries) > 0

    # A restock (the creator's stock.changed) clears it: the next buy goes to the database.
    level = await sync_to_async(level_of)(sku)
    await sync_to_async(stock_adjust)(sku=sku, add=2)
    assert not memory().at_zero("stock", level.pk)
    assert (await buy(token, body)).status == 201
    assert (await buy(token, body)).status == 201
    assert (await buy(token, body)).status == 409
    assert await sync_to_async(Order.objects.filter(status="paid").count)() == 3


async def test_a_creator_setting_stock_to_zero_is_heard(shop, token, all_queries, close_db_after):
    creator_token = await sync_to_async(session_token)(shop.owner)
    sku = await sync_to_async(make_sku)(shop, stock=5)
    body = {"sku": sku.code, "quantity": 1, "shop": shop.slug}
    assert (await buy(token, body)).status == 201  # the route: this SKU's default stock row
    changed = await call(
        f"/api/v1/skus/{sku.code}/stock/", "POST", headers={"X-Session-Token": creator_token}, body={"set": 0}
    )
    assert changed.status == 200 and changed.json()["available"] == 0
    all_queries.statements.clear()
    answer = await buy(token, {**body, "quantity": 3})
    assert answer.status == 409 and answer.json()["sku"] == sku.code and len(all_queries) == 0


async def test_a_refused_buy_renews_what_memory_knows(shop, token, all_queries, close_db_after):
    """Knowledge expires (SOLDOUT_MEMORY_SECONDS) and an event can be lost: a buy the
    database refuses for want of one unit says the row is at zero, without any event."""
    sku = await sync_to_async(make_sku)(shop, stock=1)
    body = {"sku": sku.code, "quantity": 1, "shop": shop.slug}
    assert (await buy(token, body)).status == 201
    await sync_to_async(memory().forget)()
    all_queries.statements.clear()
    assert (await buy(token, body)).status == 409  # from the database
    assert len(all_queries) > 0 and memory().observed == 1
    all_queries.statements.clear()
    assert (await buy(token, body)).status == 409
    assert len(all_queries) == 0


async def test_a_stale_sold_out_ends_when_its_knowledge_expires(settings, shop, token, close_db_after):
    """A restock whose event never arrived (a lost message: here a plain UPDATE, no event)
    is sold again once the memory's knowledge is older than SOLDOUT_MEMORY_SECONDS."""
    sku = await sync_to_async(make_sku)(shop, stock=1)
    body = {"sku": sku.code, "quantity": 1, "shop": shop.slug}
    assert (await buy(token, body)).status == 201
    level = await sync_to_async(level_of)(sku)
    await sync_to_async(StockLevel.objects.filter(pk=level.pk).update)(available=1)
    assert (await buy(token, body)).status == 409  # stale, from memory
    memory().counts[("stock", level.pk)].at -= settings.SOLDOUT_MEMORY_SECONDS  # as if that long ago
    assert (await buy(token, body)).status == 201


async def test_a_key_that_may_have_bought_is_answered_by_the_database(shop, token, all_queries, close_db_after):
    sku = await sync_to_async(make_sku)(shop, stock=1)
    body = {"sku": sku.code, "quantity": 1, "shop": shop.slug}
    bought = key()
    assert (await buy(token, body, bought)).status == 201  # the last unit

    # Its answer was lost; the client retries with the same key: the order, not "sold out".
    retry = await buy(token, body, bought)
    assert retry.status == 201 and retry.headers["idempotent-replayed"] == "true"
    # The same on a process that never saw the key, when the client says it is such a retry.
    orders_soldout.learnt().keys.clear()
    retry = await buy(token, body, bought, **{"Cache-Control": "no-cache"})
    assert retry.status == 201 and retry.headers["idempotent-replayed"] == "true"

    # A memory answer is not stored under its key: the key stays free, as after
    # checkout_incomplete, and after a restock the same key buys.
    refused = key()
    all_queries.statements.clear()
    assert (await buy(token, body, refused)).status == 409
    assert len(all_queries) == 0
    assert not await sync_to_async(IdempotencyRecord.objects.filter(key=refused).exists)()
    await sync_to_async(stock_adjust)(sku=sku, add=1)
    assert (await buy(token, body, refused)).status == 201


async def test_several_lines_name_the_line_known_at_zero_and_take_nothing(shop, token, all_queries, close_db_after):
    mug = await sync_to_async(make_sku)(shop, stock=5)
    cap = await sync_to_async(make_sku)(shop, stock=1)
    assert (await buy(token, {"sku": cap.code, "quantity": 1, "shop": shop.slug})).status == 201
    assert (await buy(token, {"sku": mug.code, "quantity": 1, "shop": shop.slug})).status == 201
    all_queries.statements.clear()
    lines = {"lines": [{"sku": mug.code, "quantity": 2}, {"sku": cap.code, "quantity": 1}], "shop": shop.slug}
    answer = await buy(token, lines)
    assert answer.status == 409 and answer.json()["sku"] == cap.code and len(all_queries) == 0
    assert (await sync_to_async(level_of)(mug)).available == 4  # nothing taken

    # A line the memory knows nothing of (a route never learnt) cannot be answered for: the
    # database is asked.
    other = await sync_to_async(make_sku)(shop, stock=0)
    assert (await buy(token, {"sku": other.code, "quantity": 1, "shop": shop.slug})).status == 409
    assert len(all_queries) > 0


async def test_bodies_of_another_shape_go_to_the_database(settings, shop, token, all_queries, close_db_after):
    sku = await sync_to_async(make_sku)(shop, stock=1)
    body = {"sku": sku.code, "quantity": 1, "shop": shop.slug}
    assert (await buy(token, body)).status == 201
    for other in (
        {**body, "coupon": "NOPE"},  # a coupon's refusals come first
        {**body, "quantity": 0},  # invalid: the view's 400
        {**body, "quantity": True},
        {**body, "quantity": 1000},  # over ORDER_MAX_QUANTITY: 400
        {**body, "stream": "1"},
    ):
        all_queries.statements.clear()
        answer = await buy(token, other)
        assert answer.status != 201 and len(all_queries) > 0, (other, answer)
    # Hostile bodies are the request guard's (creatorcommerce/guard.py), never a 500 here.
    for raw in (b"[" * 2000 + b"]" * 2000, b'{"sku": "' + b"x" * 5000 + b'"}', b"\xff\xfe", b"null"):
        answer = await call(
            "/api/v1/orders/", "POST", headers={"X-Session-Token": token, "Idempotency-Key": key()}, body=raw
        )
        assert answer.status == 400, (raw[:20], answer)
    # No Idempotency-Key: the view's 400, not a memory answer.
    answer = await call("/api/v1/orders/", "POST", headers={"X-Session-Token": token}, body=body)
    assert answer.status == 400 and answer.json()["code"] == "idempotency_key_missing"
    # The memory off: the database answers.
    settings.SOLDOUT_MEMORY = False
    all_queries.statements.clear()
    assert (await buy(token, body)).status == 409 and len(all_queries) > 0


@pytest.fixture
def live_deal(shop):
    """A live stream of ``shop`` pinning a SKU (10 units at the default location) with an
    open flash deal of 1 unit at 4.00 (list price 10.00)."""
    now = timezone.now()
    sku = make_sku(shop, price="10.00", stock=10)
    stream = Stream.objects.create(shop=shop, title="Live", starts_at=now - timedelta(minutes=5))
    pin_add(stream=stream, sku=sku)
    stream = stream_start(stream=stream, now=now)
    deal = FlashDeal.objects.create(
        stream=stream,
        sku=sku,
        price=Decimal("4.00"),
        quantity=1,
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(hours=1),
    )
    deal_open(deal=deal)
    return stream, sku, FlashDeal.objects.get(pk=deal.pk)


async def test_a_sold_out_deal_is_answered_from_memory_until_it_closes(live_deal, token, all_queries, close_db_after):
    stream, sku, deal = live_deal
    body = {"sku": sku.code, "quantity": 1, "stream": stream.pk}
    won = await buy(token, body)
    assert won.status == 201 and won.json()["total"] == "4.00"  # the deal's last unit
    all_queries.statements.clear()
    answer = await buy(token, body)
    assert answer.status == 409 and answer.json()["sku"] == sku.code and len(all_queries) == 0

    # The deal closes (deal.closed): the SKU sells again at its list price, from its row.
    await sync_to_async(deal_close)(deal=deal)
    after = await buy(token, body)
    assert after.status == 201 and after.json()["total"] == "10.00"


async def test_a_stream_line_without_a_deal_is_never_answered_from_memory(
    live_deal, token, all_queries, close_db_after
):
    """Without an open deal a stream's line could be an early-access buyer's, sold from a
    scheduled deal's shelf: not the same stock row for every buyer."""
    stream, sku, deal = live_deal
    await sync_to_async(deal_close)(deal=deal)
    await sync_to_async(stock_adjust)(sku=sku, set_to=1)
    body = {"sku": sku.code, "quantity": 1, "stream": stream.pk}
    assert (await buy(token, body)).status == 201
    all_queries.statements.clear()
    assert (await buy(token, body)).status == 409
    assert len(all_queries) > 0


async def test_stale_memory_never_sells_more_than_the_database_gives(settings, shop, close_db_after):
    """50 buys at once through the ASGI app while the memory believes the SKU is plentiful
    (a newer version than any event will carry): the database's conditional UPDATE decides
    alone, 5 sold and 45 refused. Then a restock of 3 while 20 more buy: 3 more sold."""
    settings.ADMISSION_MAX_IN_FLIGHT = 0
    sku = await sync_to_async(make_sku)(shop, stock=5)
    tokens = [await sync_to_async(session_token)(await sync_to_async(make_buyer)()) for _ in range(10)]
    level = await sync_to_async(level_of)(sku)
    memory().heard_count("stock", level.pk, available=1000, version=10**9, until=None)
    body = {"sku": sku.code, "quantity": 1, "shop": shop.slug}
    answers = await asyncio.gather(*(buy(tokens[i % 10], body) for i in range(50)))
    assert sorted(a.status for a in answers) == [201] * 5 + [409] * 45
    assert (await sync_to_async(level_of)(sku)).available == 0

    # Now with the memory current (forgotten, then renewed by the refusals and events).
    await sync_to_async(memory().forget)()
    restock = asyncio.ensure_future(sync_to_async(stock_adjust)(sku=sku, add=3))
    answers = await asyncio.gather(*(buy(tokens[i % 10], body) for i in range(20)), restock)
    sold = sum(a.status == 201 for a in answers[:-1])
    assert (await sync_to_async(level_of)(sku)).available == 3 - sold >= 0
    answers = await asyncio.gather(*(buy(tokens[i % 10], body) for i in range(10)))
    sold += sum(a.status == 201 for a in answers)
    assert sold == 3
    paid = await sync_to_async(Order.objects.filter(status="paid").count)()
    assert paid == 8 and (await sync_to_async(level_of)(sku)).available == 0


@pytest.mark.redis
async def test_another_process_hears_the_zero_over_the_channel_layer(
    redis_channel_layer, shop, monkeypatch, close_db_after
):
    """The process that committed hears its events at once; every other web process hears
    them from the channel layer (spine/processes.py). Here this process plays the other one:
    its own-commit path is off, so what it learns comes through Redis."""
    processes.listen_here()
    monkeypatch.setattr(processes, "heard_here", lambda events: None)
    sku = await sync_to_async(make_sku)(shop, stock=3)
    level = await sync_to_async(level_of)(sku)

    async def until(condition):
        for _ in range(2000):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"not within 20 s: {condition}")

    await until(processes.listening)  # joined the group: from now on nothing is missed
    await sync_to_async(stock_adjust)(sku=sku, set_to=0)
    await until(lambda: memory().at_zero("stock", level.pk))
    await sync_to_async(stock_adjust)(sku=sku, set_to=4)
    await until(lambda: not memory().at_zero("stock", level.pk))
    assert memory().counts[("stock", level.pk)].available == 4
