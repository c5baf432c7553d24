"""Counters (a coupon's use, a capped geo offer's redemptions) are locked in the claims'
one global order - counters, then units, then allowances (docs/pricing.md, "Claims") - by
buys and releases alike, so no buy with a coupon can deadlock with another one or with a
release (PostgreSQL).

As in tests/orders/test_lock_order.py each race is made deterministic: one side stops while
it holds a lock, the test waits until PostgreSQL shows the other side waiting for a lock
(pg_stat_activity), then lets the first go on. With the locks in one order the waiter simply
waits its turn; in opposite orders PostgreSQL reports a deadlock and one side fails."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction

from apps.catalog.models import StockLevel
from apps.geofences.handlers import coupon_redeemed
from apps.geofences.models import Coupon, GeoOffer
from apps.orders.models import Order
from apps.orders.services import order_release, order_reserve
from creatorcommerce.spine.models import HandlerRun, OutboxEvent
from creatorcommerce.spine.tasks import apply_handler
from tests.factories import make_buyer, make_sku
from tests.helpers import WAIT, captured_events, run_concurrently

from .coupon_helpers import T0, coupon_buy, issue, make_offer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOW = T0 + timedelta(minutes=2)
HANDLER = "apps.geofences.handlers.coupon_redeemed"


def _waiting_for_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def _until_waiting(pids: list) -> bool:
    """Poll PostgreSQL's view of the sessions until every one of ``pids`` waits for a lock."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if all(pid is not None for pid in pids) and all(_waiting_for_a_lock(pid) for pid in pids):
            return True
        time.sleep(0.01)  # polling pg_stat_activity, not waiting out a race
    return False


class _Race:
    """``holder`` runs first and calls ``pause_here()`` while it holds a lock; the
    ``waiters`` are started then, and the holder goes on once PostgreSQL shows every waiter
    blocked on a lock. Returns every side's outcome."""

    def __init__(self):
        self.paused = threading.Event()
        self.saw_waiters_blocked = False
        self.pids: list = []

    def pause_here(self):
        if self.paused.is_set():
            return
        self.paused.set()
        self.saw_waiters_blocked = _until_waiting(self.pids)

    def run(self, holder, waiters: dict):
        results = {}
        self.pids = [None] * len(waiters)

        def run_holder():
            try:
                results["holder"] = ("ok", holder())
            except Exception as exc:
                results["holder"] = ("error", f"{type(exc).__name__}: {exc}")
            finally:
                connection.close()

        def run_waiter(index, name, fn):
            try:
                assert self.paused.wait(WAIT)
                connection.ensure_connection()
                self.pids[index] = connection.connection.info.backend_pid
                results[name] = ("ok", fn())
            except Exception as exc:
                results[name] = ("error", f"{type(exc).__name__}: {exc}")
            finally:
                connection.close()

        threads = [threading.Thread(target=run_holder)] + [
            threading.Thread(target=run_waiter, args=(i, name, fn)) for i, (name, fn) in enumerate(waiters.items())
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(3 * WAIT)
        return results


def _buy(buyer, lines, coupon, key):
    def buy():
        status, body = coupon_buy(buyer, lines, coupon=coupon.code, now=NOW, key=key)
        return status if status == 201 else (status, body.get("code"))

    return buy


# -- (a) a release racing a buy of the same capped offer and SKU --------------------------------


@pytest.mark.parametrize("pause_after", ["counters", "units"])
def test_releasing_a_coupon_order_and_a_buy_with_a_coupon_of_the_same_capped_offer_do_not_deadlock(
    monkeypatch, pause_after
):
    """The released order redeemed viewer A's coupon and one of the offer's redemptions and
    took a unit of the SKU; viewer B buys the same SKU (the same stock row) with a coupon of
    the same capped offer. The release stops after giving its counters back (holding the
    coupon and the geo offer rows) or after giving the first units back (holding the stock
    row too); B's buy must wait on the geo offer's row and then buy."""
    from apps.orders import services as orders_services
    from apps.pricing import claims

    sku = make_sku(price="10.00", stock=10)
    offer = make_offer(sku.shop, cap=2)
    a, b = make_buyer(), make_buyer()
    coupon_a, coupon_b = issue(a, offer), issue(b, offer)
    order = order_reserve(buyer=a, lines=[(sku.code, 1)], idempotency_key="held-a", coupon=coupon_a.code, now=T0)
    assert order.redemptions == [f"coupon:{coupon_a.pk}", f"geo_offer:{offer.pk}"]
    assert GeoOffer.objects.get(pk=offer.pk).redemptions_left == 1

    race = _Race()
    if pause_after == "counters":
        real_counters = orders_services.counters_give_back

        def counters_give_back(redemptions):
            events = real_counters(redemptions)
            race.pause_here()
            return events

        monkeypatch.setattr(orders_services, "counters_give_back", counters_give_back)
    else:
        real_stock = claims.stock_return

        def stock_return(**kwargs):
            count = real_stock(**kwargs)
            race.pause_here()
            return count

        monkeypatch.setattr(claims, "stock_return", stock_return)

    results = race.run(
        lambda: order_release(order_id=order.pk, to_status=Order.Status.EXPIRED),
        {"buy": _buy(b, [(sku.code, 1)], coupon_b, "race-b")},
    )
    assert race.saw_waiters_blocked, "the buy never waited: the race was not run"
    assert results == {"holder": ("ok", True), "buy": ("ok", 201)}
    # Counts exact: A's unit and redemption came back, B's were taken.
    assert Order.objects.get(pk=order.pk).status == Order.Status.EXPIRED
    assert StockLevel.objects.get(sku=sku).available == 9
    assert GeoOffer.objects.get(pk=offer.pk).redemptions_left == 1
    coupon_a.refresh_from_db()
    coupon_b.refresh_from_db()
    assert (coupon_a.redeemed_at, coupon_a.order_id) == (None, None)
    assert coupon_b.redeemed_at == NOW
    (b_order,) = Order.objects.filter(buyer=b)
    assert b_order.redemptions == [f"coupon:{coupon_b.pk}", f"geo_offer:{offer.pk}"]
    assert b_order.status == Order.Status.PAID


# -- (b) two buys with coupons of one capped offer, lines in opposite orders ----------------------


def test_two_coupon_buys_of_one_capped_offer_with_lines_in_opposite_orders_do_not_deadlock():
    """A third session holds the smaller stock row locked until both buys wait for a lock;
    then both must buy. (Taken in line order, with the counter after the units, the second
    buy would hold the larger row while the first holds the smaller one: a deadlock.)"""
    first = make_sku(price="10.00", stock=10)  # made first: the smaller stock row id
    second = make_sku(first.shop, price="20.00", stock=10)
    small = StockLevel.objects.get(sku=first)
    assert small.pk < StockLevel.objects.get(sku=second).pk
    offer = make_offer(first.shop, cap=5)
    x, y = make_buyer(), make_buyer()
    coupon_x, coupon_y = issue(x, offer), issue(y, offer)

    race = _Race()

    def hold_the_smaller_stock_row():
        with transaction.atomic():
            StockLevel.objects.select_for_update().get(pk=small.pk)
            race.pause_here()
        return "held"

    results = race.run(
        hold_the_smaller_stock_row,
        {
            "x": _buy(x, [(first.code, 1), (second.code, 1)], coupon_x, "race-x"),
            "y": _buy(y, [(second.code, 1), (first.code, 1)], coupon_y, "race-y"),
        },
    )
    assert race.saw_waiters_blocked, "the buys never waited: the race was not run"
    assert results == {"holder": ("ok", "held"), "x": ("ok", 201), "y": ("ok", 201)}
    assert StockLevel.objects.get(sku=first).available == 8
    assert StockLevel.objects.get(sku=second).available == 8
    assert GeoOffer.objects.get(pk=offer.pk).redemptions_left == 3
    assert Coupon.objects.filter(offer=offer, redeemed_at__isnull=False).count() == 2
    for buyer, coupon in ((x, coupon_x), (y, coupon_y)):
        (order,) = Order.objects.filter(buyer=buyer)
        assert order.redemptions == [f"coupon:{coupon.pk}", f"geo_offer:{offer.pk}"]
        assert order.total == sum(line.total for line in order.lines.all())


# -- (c) the order.placed handler delivered twice -------------------------------------------------


def _paid_order_with_a_coupon():
    buyer, sku = make_buyer(), make_sku(price="10.00", stock=5)
    offer = make_offer(sku.shop, cap=4)
    coupon = issue(buyer, offer)
    status, body = coupon_buy(buyer, [(sku.code, 1)], coupon=coupon.code, now=NOW, key="handler-buy")
    assert status == 201, body
    event = OutboxEvent.objects.get(type="order.placed", payload__order=body["id"])
    return buyer, offer, coupon, body["id"], event


def _state(coupon, offer):
    coupon.refresh_from_db()
    return (coupon.redeemed_at, coupon.order_id, GeoOffer.objects.get(pk=offer.pk).redemptions_left)


def test_the_order_placed_handler_delivered_twice_changes_nothing_the_second_time():
    buyer, offer, coupon, order_id, event = _paid_order_with_a_coupon()
    # Whether or not the commit already ran it: undo the handler's write and its run, so
    # that this test delivers the event itself, twice.
    Coupon.objects.filter(pk=coupon.pk).update(order=None)
    HandlerRun.objects.filter(event=event, handler=HANDLER).delete()

    with captured_events() as first:
        assert apply_handler(event.pk, HANDLER) == "applied"
    assert first == [
        (
            "coupon.redeemed",
            {"coupon": coupon.pk, "offer": offer.pk, "shop": offer.shop_id, "user": buyer.pk, "order": order_id},
            [f"shop.{offer.shop_id}"],
        )
    ]
    after_first = _state(coupon, offer)
    assert after_first == (NOW, order_id, 3)

    # Redelivered through the spine (the HandlerRun makes it a no-op) and, as an
    # at-least-once delivery would, straight to the handler: nothing changes, no event.
    with captured_events() as again:
        assert apply_handler(event.pk, HANDLER) == "duplicate"
        coupon_redeemed(event)
    assert again == []
    assert _state(coupon, offer) == after_first


def test_the_order_placed_handler_run_twice_at_once_emits_one_coupon_redeemed():
    _, offer, coupon, order_id, event = _paid_order_with_a_coupon()
    Coupon.objects.filter(pk=coupon.pk).update(order=None)

    def deliver():
        with transaction.atomic():
            coupon_redeemed(event)

    with captured_events() as events:
        run_concurrently(deliver, [() for _ in range(6)])
    assert [e[0] for e in events] == ["coupon.redeemed"]
    assert _state(coupon, offer) == (NOW, order_id, 3)


# -- (d) issuing a coupon does not hold up a buy with another coupon of the offer ------------------


def test_a_buy_does_not_wait_for_a_transaction_that_issued_a_coupon_of_the_same_offer():
    """A ping's transaction that issued a coupon of the offer holds no lock on the offer's
    row the buy locks (``FOR UPDATE``): Django's foreign keys are DEFERRABLE INITIALLY
    DEFERRED, so the coupon's reference to its offer is checked (a KEY SHARE lock, which
    ``FOR UPDATE`` would wait for) only at the ping's commit. Pins that, so entering a
    venue never holds up buys of its offers."""
    sku = make_sku(stock=5)
    offer = make_offer(sku.shop, cap=5)
    buyer, newcomer = make_buyer(), make_buyer()
    coupon = issue(buyer, offer)
    issued, bought = threading.Event(), threading.Event()
    seen = {}

    def ping():
        try:
            with transaction.atomic():
                seen["issued"] = len(issue_all(newcomer, offer))
                issued.set()
                deadline = time.monotonic() + WAIT
                while time.monotonic() < deadline and not bought.is_set():
                    if seen.get("pid") is not None and _waiting_for_a_lock(seen["pid"]):
                        seen["buy_blocked"] = True
                        break
                    time.sleep(0.01)  # polling pg_stat_activity, not waiting out a race
        finally:
            connection.close()

    def buy():
        try:
            assert issued.wait(WAIT)
            connection.ensure_connection()
            seen["pid"] = connection.connection.info.backend_pid
            seen["buy"] = coupon_buy(buyer, [(sku.code, 1)], coupon=coupon.code, now=NOW, key="beside-a-ping")[0]
            bought.set()
        finally:
            connection.close()

    threads = [threading.Thread(target=ping), threading.Thread(target=buy)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(3 * WAIT)
    assert seen.get("issued") == 1
    assert "buy_blocked" not in seen, "the buy waited for the ping's transaction"
    assert seen["buy"] == 201
    assert GeoOffer.objects.get(pk=offer.pk).redemptions_left == 4
    assert Coupon.objects.filter(offer=offer).count() == 2


def issue_all(user, offer):
    from apps.geofences.coupons import coupons_issue

    return coupons_issue(user=user, venue_id=offer.venue_id, trigger="enter", now=T0)
