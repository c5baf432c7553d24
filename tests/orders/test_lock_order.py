"""Everything that locks several stock and deal rows in one transaction locks them in the
buy's order - deal rows, then stock rows by id (docs/pricing.md, "Claims") - so none of it
can deadlock with a multi-line buy (PostgreSQL).

Each race is made deterministic instead of hoped for: the other side stops after its first
stock-row lock, the buy is started and the test waits until PostgreSQL shows the buy
waiting for a lock; then the other side goes on. With the locks in one order the buy
simply waits its turn; in opposite orders PostgreSQL reports a deadlock and one side fails
(how these tests failed before the fix)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.catalog.models import StockLevel
from apps.orders.models import Order
from apps.orders.services import order_place, order_release, order_reserve, request_fingerprint
from apps.streams.models import FlashDeal, Stream
from apps.streams.services import deal_close, deal_open, stream_end
from tests.factories import CreatorFactory, make_buyer, make_sku
from tests.helpers import WAIT

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _waiting_for_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


class _Race:
    """``other`` runs first; at ``pause_at`` (after its first stock-row lock) it waits until
    the buy is blocked on a lock, then goes on. Returns both outcomes."""

    def __init__(self):
        self.buy_pid: int | None = None
        self.buy_started = threading.Event()
        self.paused = threading.Event()
        self.saw_buy_blocked = False

    def pause_here(self):
        if self.paused.is_set():
            return
        self.paused.set()
        assert self.buy_started.wait(WAIT)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.buy_pid is not None and _waiting_for_a_lock(self.buy_pid):
                self.saw_buy_blocked = True
                return
            time.sleep(0.01)  # polling PostgreSQL's view of the buy, not waiting out a race

    def run(self, other, buy):
        results = {}

        def run_other():
            try:
                results["other"] = ("ok", other())
            except Exception as exc:
                results["other"] = ("error", f"{type(exc).__name__}: {exc}")
            finally:
                connection.close()

        def run_buy():
            try:
                assert self.paused.wait(WAIT)
                connection.ensure_connection()
                self.buy_pid = connection.connection.info.backend_pid
                self.buy_started.set()
                results["buy"] = ("ok", buy())
            except Exception as exc:
                results["buy"] = ("error", f"{type(exc).__name__}: {exc}")
            finally:
                connection.close()

        threads = [threading.Thread(target=run_other), threading.Thread(target=run_buy)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(3 * WAIT)
        return results


def _two_skus():
    shop = CreatorFactory().shop
    first = make_sku(shop, stock=50)  # made first: the smaller stock row id
    second = make_sku(shop, stock=50)
    assert StockLevel.objects.get(sku=first).pk < StockLevel.objects.get(sku=second).pk
    return shop, first, second


def _buy_both(shop, *skus):
    buyer = make_buyer()
    lines = [(sku.code, 1) for sku in skus]
    body = {"lines": [{"sku": code, "quantity": q} for code, q in lines], "shop": shop.slug}

    def buy():
        return order_place(
            buyer=buyer,
            lines=lines,
            shop_slug=shop.slug,
            idempotency_key="lock-order-buy",
            fingerprint=request_fingerprint(body),
        ).status

    return buy


def _live_deal(shop, sku, stream=None):
    now = timezone.now()
    stream = stream or Stream.objects.create(shop=shop, title="Locks", starts_at=now, status=Stream.Status.LIVE)
    deal = FlashDeal.objects.create(
        stream=stream,
        sku=sku,
        price="1.00",
        quantity=5,
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(hours=1),
        per_buyer_limit=None,
    )
    deal_open(deal=deal)
    return stream, deal


def _pause_after_first_stock_return(monkeypatch, module, race):
    real = module.stock_return

    def stock_return(**kwargs):
        count = real(**kwargs)
        race.pause_here()
        return count

    monkeypatch.setattr(module, "stock_return", stock_return)


def test_releasing_a_line_of_a_closed_deal_and_a_multiline_buy_do_not_deadlock(monkeypatch):
    """The released order has a line from a deal that closed since (its units go to the
    deal's location, the *larger* stock row) and a line from the smaller stock row."""
    from apps.pricing import claims
    from apps.streams import services as streams_services

    shop, small, large = _two_skus()
    stream, deal = _live_deal(shop, large)
    order = order_reserve(
        buyer=make_buyer(), lines=[(large.code, 1), (small.code, 1)], idempotency_key="held-1", stream_id=stream.pk
    )
    assert sorted(line.unit_source for line in order.lines.all()) == ["", f"deal:{deal.pk}"]
    deal_close(deal=deal)

    race = _Race()
    for module in (claims, streams_services):  # whichever gives a stock row units back first
        _pause_after_first_stock_return(monkeypatch, module, race)
    results = race.run(
        lambda: order_release(order_id=order.pk, to_status=Order.Status.EXPIRED), _buy_both(shop, large, small)
    )
    assert race.saw_buy_blocked, "the buy never waited: the race was not run"
    assert results == {"other": ("ok", True), "buy": ("ok", 201)}
    assert Order.objects.get(pk=order.pk).status == Order.Status.EXPIRED


def test_ending_a_stream_with_two_open_deals_and_a_multiline_buy_do_not_deadlock(monkeypatch):
    """The deal on the larger stock row was made (and would be closed) first."""
    from apps.streams import services as streams_services

    shop, small, large = _two_skus()
    stream, _ = _live_deal(shop, large)
    _live_deal(shop, small, stream)

    race = _Race()
    _pause_after_first_stock_return(monkeypatch, streams_services, race)
    results = race.run(lambda: stream_end(stream=stream).status, _buy_both(shop, large, small))
    assert race.saw_buy_blocked, "the buy never waited: the race was not run"
    assert results == {"other": ("ok", Stream.Status.ENDED), "buy": ("ok", 201)}
    assert not FlashDeal.objects.filter(status=FlashDeal.Status.OPEN).exists()
