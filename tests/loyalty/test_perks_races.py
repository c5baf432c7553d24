"""Perks under real concurrency (PostgreSQL): one perk, many buys at once, exactly one
discounted order; the counter's hand-written statements; what a perk costs the buy in
statements. Each thread has its own connection."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.catalog.models import StockLevel
from apps.loyalty.models import Perk
from apps.orders.models import Order
from apps.pricing.registry import counter_source_for
from tests.factories import make_buyer, make_sku
from tests.helpers import run_concurrently
from tests.ops.test_hot_sql import GATE_OPEN, GATE_SHUT, assert_from_models, explain, run

from .perk_helpers import T0, buy, grant_perk, make_badge

NOW = T0 + timedelta(minutes=1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_buys_with_one_perk_make_one_discounted_order():
    buyer, sku = make_buyer(), make_sku(price="10.00", stock=100)
    _, perk = grant_perk(make_badge(sku.shop, percent="10.00"), buyer)
    results = run_concurrently(lambda: buy(buyer, [(sku.code, 1)], now=NOW), [() for _ in range(10)])
    # A buy that priced with the perk and lost the race is refused (it charges what it
    # priced); one that read the perk already used prices and buys without it.
    assert {status for status, _ in results} <= {201, 409}, results
    assert {body["code"] for status, body in results if status == 409} <= {"perk_used"}
    totals = sorted(Decimal(body["total"]) for status, body in results if status == 201)
    assert totals[0] == Decimal("9.00") and totals[1:] == [Decimal("10.00")] * (len(totals) - 1), results
    orders = Order.objects.filter(buyer=buyer)
    assert orders.count() == len(totals)
    (order,) = [o for o in orders if o.redemptions]
    assert order.total == Decimal("9.00")
    assert order.redemptions == [f"perk:{perk.pk}"]
    assert Perk.objects.get(pk=perk.pk).used_at == NOW
    assert StockLevel.objects.get(sku=sku).available == 100 - len(totals)  # the refused buys took nothing
    print(f"\n10 concurrent buys, one perk: {len(totals)} bought (1 with the perk), {10 - len(totals)} perk_used")
    # A retry prices again, without the perk, and buys at the full price.
    status, body = buy(buyer, [(sku.code, 1)], now=NOW)
    assert (status, body["total"]) == (201, "10.00")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_buys_that_all_priced_with_the_perk_make_one_order_and_nine_perk_used(monkeypatch):
    """The worst interleaving, forced: every buy reads the perk (prices with it) before
    any takes it. The counter claim lets exactly one through; the others answer 409
    ``perk_used`` and take nothing (quote == charge: none is charged a price it did not
    quote)."""
    import threading

    from apps.loyalty import pricing

    buyer, sku = make_buyer(), make_sku(price="10.00", stock=100)
    _, perk = grant_perk(make_badge(sku.shop, percent="10.00"), buyer)
    everyone_priced = threading.Barrier(10)
    real = pricing.best_perks

    def read_then_wait(**kwargs):
        found = real(**kwargs)
        everyone_priced.wait(timeout=30)
        return found

    monkeypatch.setattr(pricing, "best_perks", read_then_wait)
    results = run_concurrently(lambda: buy(buyer, [(sku.code, 1)], now=NOW), [() for _ in range(10)])
    assert sorted(status for status, _ in results) == [201] + [409] * 9, results
    assert {body["code"] for status, body in results if status == 409} == {"perk_used"}
    (order,) = Order.objects.filter(buyer=buyer)
    assert (order.total, order.redemptions) == (Decimal("9.00"), [f"perk:{perk.pk}"])
    assert StockLevel.objects.get(sku=sku).available == 99


@pytest.mark.django_db
def test_perk_counter_statements():
    buyer, sku = make_buyer(), make_sku()
    _, perk = grant_perk(make_badge(sku.shop, valid_days=1), buyer)
    source = counter_source_for("perk")
    sql, params = source.take_statement(id=perk.pk, buyer_id=buyer.pk, now=NOW, after=None)
    assert_from_models(sql, Perk)
    explain(sql, params)
    assert run(*source.take_statement(id=perk.pk, buyer_id=buyer.pk + 1, now=NOW, after=None)) == []  # not theirs
    later = T0 + timedelta(days=1)
    assert run(*source.take_statement(id=perk.pk, buyer_id=buyer.pk, now=later, after=None)) == []  # expired
    assert run(sql, params) == [(perk.pk,)]
    assert run(sql, params) == []  # used
    assert Perk.objects.get(pk=perk.pk).used_at == NOW


@pytest.mark.postgres
@pytest.mark.django_db
def test_perk_counter_statements_after_an_earlier_part():
    buyer, sku = make_buyer(), make_sku()
    _, perk = grant_perk(make_badge(sku.shop), buyer)
    source = counter_source_for("perk")
    lock_sql, lock_params = source.lock_statement(id=perk.pk, buyer_id=buyer.pk, now=NOW, after="gate")
    take_sql, take_params = source.take_statement(id=perk.pk, buyer_id=buyer.pk, now=NOW, after="gate")
    assert_from_models(lock_sql, Perk)
    assert run(GATE_SHUT + lock_sql, lock_params) == []
    assert run(GATE_SHUT + take_sql, take_params) == []
    assert run(GATE_OPEN + lock_sql, lock_params) == [(perk.pk,)]
    assert run(GATE_OPEN + take_sql, take_params) == [(perk.pk,)]
    assert run(GATE_OPEN + take_sql, take_params) == []  # used
    Perk.objects.filter(pk=perk.pk).update(used_at=None, withdrawn_at=NOW)
    assert run(GATE_OPEN + lock_sql, lock_params) == []  # withdrawn


def _statements(buyer, sku, key) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        status, body = buy(buyer, [(sku.code, 1)], now=NOW, key=key)
        assert status == 201, body
    return [q["sql"] for q in ctx.captured_queries]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_what_a_perk_costs_the_buy_in_statements(monkeypatch):
    """Measured on PostgreSQL: the buy's one read also says whether the buyer has a usable
    perk (a registered buyer flag), so a buyer without one costs nothing more (3 statements);
    with one, the provider reads it (one SELECT) and its counter rides in the reserve's
    statement (4, no BEGIN/COMMIT)."""
    from creatorcommerce.spine import events

    monkeypatch.setattr(events, "enqueue_handlers", lambda event: None)
    buyer, sku = make_buyer(), make_sku(stock=50)
    _statements(buyer, sku, "warm-up-key-1")  # first use creates the node's signing key
    plain = _statements(buyer, sku, "counted-plain-1")
    grant_perk(make_badge(sku.shop), buyer)
    with_perk = _statements(buyer, sku, "counted-perk-1")
    print(f"\nstatements: without a perk {len(plain)}, with one {len(with_perk)}")
    assert [s.split()[0] for s in plain] == ["SELECT", "WITH", "WITH"], "\n".join(plain)
    assert "loyalty_perk" in plain[0]  # the flag, in the buy's read
    assert [s.split()[0] for s in with_perk] == ["SELECT", "SELECT", "WITH", "WITH"], "\n".join(with_perk)
    assert "loyalty_perk" in with_perk[1] and "loyalty_perk" in with_perk[2]
    assert "BEGIN" not in " ".join(with_perk).upper().split()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_what_free_shipping_and_early_access_cost_the_buy_in_statements(monkeypatch):
    """A stream buy by a viewer without early access reads no deal it cannot have (4
    statements, as before early access: the buy's read, the open deals, the reserve, the
    confirm; the flags are in the buy's read); a free-shipping perk costs what a percent
    perk does (one SELECT more); an early buy reads the access and the deals
    opening soon and their shelf, and takes the deal's count, the shelf and the perk in the
    one reserve statement (inside BEGIN/COMMIT: two units claims)."""
    from apps.orders.services import order_place, request_fingerprint
    from apps.streams.models import FlashDeal, Stream
    from creatorcommerce.spine import events

    monkeypatch.setattr(events, "enqueue_handlers", lambda event: None)
    buyer, sku = make_buyer(), make_sku(price="20.00", stock=50)
    sku.shop.shipping_fee = Decimal("4.90")
    sku.shop.save(update_fields=["shipping_fee"])
    stream = Stream.objects.create(shop=sku.shop, title="Drop", starts_at=NOW + timedelta(minutes=5))
    FlashDeal.objects.create(
        stream=stream,
        sku=sku,
        price=Decimal("12.00"),
        quantity=5,
        opens_at=NOW + timedelta(minutes=10),
        closes_at=NOW + timedelta(hours=1),
    )

    def statements(key):
        with CaptureQueriesContext(connection) as ctx:
            outcome = order_place(
                buyer=buyer,
                lines=[(sku.code, 1)],
                stream_id=stream.pk,
                idempotency_key=key,
                fingerprint=request_fingerprint({"key": key}),
                now=NOW,
            )
            assert outcome.status == 201, outcome.body
        return outcome.body, [q["sql"] for q in ctx.captured_queries]

    statements("warm-up-key-2")
    body, plain = statements("stream-plain-1")
    assert (body["total"], [s.split()[0] for s in plain]) == ("24.90", ["SELECT", "SELECT", "WITH", "WITH"])
    assert "streams_flashdeal" in plain[1] and "loyalty_perk" not in plain[1]
    grant_perk(make_badge(sku.shop, kind="free_shipping"), buyer)
    body, free = statements("stream-free-1")
    assert (body["total"], [s.split()[0] for s in free]) == ("20.00", ["SELECT"] * 3 + ["WITH", "WITH"])
    grant_perk(make_badge(sku.shop, kind="early_access", perk_minutes=30), buyer)
    body, early = statements("stream-early-1")
    assert body["total"] == "16.90"  # the deal's 12.00 and the fee: the free-shipping perk is used
    print(f"\nstatements of a stream buy: plain {len(plain)}, free shipping {len(free)}, early access {len(early)}")
    assert [s.split()[0] for s in early if s.split()[0] in ("WITH", "UPDATE", "INSERT")] == ["WITH", "WITH"]
    # The buy's read, the open deals, the access, the deals opening soon, their shelf;
    # BEGIN, the reserve, COMMIT; the confirm.
    assert len(early) == 9, "\n".join(early)
