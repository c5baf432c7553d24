"""Each rule awards exactly when it should, once per badge, viewer and scope, whatever is
delivered twice (the spine's redelivery, or the handler run again by hand)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.loyalty import rules
from apps.loyalty.models import Award
from apps.orders.services import order_refund
from apps.streams.services import stream_end
from creatorcommerce.spine.models import OutboxEvent

from .conftest import ON_DEAL, ON_END, ON_ORDER, buy, handle, placed_event

pytestmark = pytest.mark.django_db


def _awards(badge):
    return list(Award.objects.filter(badge=badge).order_by("pk").values_list("user_id", "scope", "status"))


def _run_order_handler_twice(order):
    event = placed_event(order)
    from creatorcommerce.spine.tasks import apply_handler

    assert apply_handler(event.pk, ON_ORDER) == "applied"
    assert apply_handler(event.pk, ON_ORDER) == "duplicate"
    # The handler itself run again (as after a lost HandlerRun): still once.
    from apps.loyalty.handlers import badges_on_order_placed

    badges_on_order_placed(event)


def test_first_buyers_awards_the_first_n_distinct_buyers_of_the_drop(drop, buyers, make_badge, make_drop):
    badge = make_badge("first_buyers", count=2)
    a, b, c = buyers
    for buyer in (a, a, b, c):  # a buys twice: one place
        _run_order_handler_twice(buy(buyer, stream=drop))
    scope = f"stream:{drop.pk}"
    assert _awards(badge) == [(a.pk, scope, "granted"), (b.pk, scope, "granted")]
    # Another drop of the shop has its own first buyers (no stream on the badge).
    other = make_drop(title="Next")
    _run_order_handler_twice(buy(c, stream=other))
    assert (c.pk, f"stream:{other.pk}", "granted") in _awards(badge)


def test_first_buyers_of_one_drop_only_and_never_outside_a_stream(drop, shop, buyers, make_badge, make_drop):
    other = make_drop(title="Other")
    badge = make_badge("first_buyers", count=5, stream=drop)
    _run_order_handler_twice(buy(buyers[0], stream=other))
    _run_order_handler_twice(buy(buyers[1], shop=shop))
    assert _awards(badge) == []
    _run_order_handler_twice(buy(buyers[2], stream=drop))
    assert _awards(badge) == [(buyers[2].pk, f"stream:{drop.pk}", "granted")]


def test_deal_speed_within_t_seconds_of_the_deal_opening(drop, deal, buyers, make_badge):
    badge = make_badge("deal_speed", seconds=30)
    opened_at = OutboxEvent.objects.get(type="deal.opened", payload__deal_id=deal.pk).created_at
    fast = buy(buyers[0], sku="DEAL", stream=drop)
    slow = buy(buyers[1], sku="DEAL", stream=drop)
    not_at_the_deal = buy(buyers[2], sku="TEE", stream=drop)
    type(slow).objects.filter(pk=slow.pk).update(paid_at=opened_at + timedelta(seconds=31))
    for order in (fast, slow, not_at_the_deal):
        _run_order_handler_twice(order)
    assert _awards(badge) == [(buyers[0].pk, f"deal:{deal.pk}", "granted")]
    # The deal's own handler (e.g. its event handled after the orders') changes nothing more.
    assert handle("deal.opened", ON_DEAL, deal_id=deal.pk) == ["applied"]
    assert _awards(badge) == [(buyers[0].pk, f"deal:{deal.pk}", "granted")]


def test_deal_opened_handled_after_the_orders_awards_them(drop, deal, buyers, make_badge):
    """``deal.opened`` handled late (synced from another node): the orders it finds are judged
    with the event's time."""
    fast = buy(buyers[0], sku="DEAL", stream=drop)
    badge = make_badge("deal_speed", seconds=30)
    OutboxEvent.objects.filter(type="deal.opened", payload__deal_id=deal.pk).update(
        created_at=fast.paid_at - timedelta(seconds=5)
    )
    assert handle("deal.opened", ON_DEAL, deal_id=deal.pk) == ["applied"]
    assert handle("deal.opened", ON_DEAL, deal_id=deal.pk) == ["duplicate"]
    assert _awards(badge) == [(buyers[0].pk, f"deal:{deal.pk}", "granted")]


def _ended(stream):
    stream_end(stream=stream)
    return handle("stream.ended", ON_END, stream=stream.pk)


def test_streak_of_k_consecutive_drops(make_drop, buyers, make_badge):
    badge = make_badge("streak", count=2)
    loyal, skipper, late = buyers
    now = timezone.now()
    first = make_drop(starts_at=now - timedelta(days=2), title="One")
    buy(loyal, stream=first)
    buy(skipper, stream=first)
    assert _ended(first) == ["applied"]
    assert _awards(badge) == []  # one drop is no streak of two
    second = make_drop(starts_at=now - timedelta(days=1), title="Two")
    buy(late, stream=second)
    # The buy that completes it earns it at once (order.placed) ...
    _run_order_handler_twice(buy(loyal, stream=second))
    assert _awards(badge) == [(loyal.pk, "", "granted")]
    # ... and the end of the drop finds nobody else (skipper missed it, late missed the first).
    assert _ended(second) == ["applied"]
    assert handle("stream.ended", ON_END, stream=second.pk) == ["duplicate"]
    assert _awards(badge) == [(loyal.pk, "", "granted")]


def test_streak_on_stream_ended_awards_everyone_who_bought_in_each(make_drop, buyers, make_badge):
    badge = make_badge("streak", count=2)
    now = timezone.now()
    first, second = make_drop(starts_at=now - timedelta(days=2)), make_drop(starts_at=now - timedelta(days=1))
    for buyer in buyers[:2]:
        buy(buyer, stream=first)
        buy(buyer, stream=second)  # order.placed not handled: the end of the drop catches it
    _ended(first)
    _ended(second)
    rules.on_stream_ended(payload={"stream": second.pk, "shop": second.shop_id}, now=timezone.now())
    assert sorted(_awards(badge)) == sorted([(buyers[0].pk, "", "granted"), (buyers[1].pk, "", "granted")])


def test_repeat_buyer_counts_paid_orders_not_refunded_ones(shop, creator, buyers, make_badge):
    badge = make_badge("repeat", count=2)
    buyer = buyers[0]
    first = buy(buyer, shop=shop)
    order_refund(order=first, actor=creator, restock=True, reason="changed mind")
    second = buy(buyer, shop=shop)
    _run_order_handler_twice(second)
    assert _awards(badge) == []  # the refunded one does not count
    _run_order_handler_twice(buy(buyer, shop=shop))
    assert _awards(badge) == [(buyer.pk, "", "granted")]


def test_spend_over_an_amount_in_the_period(shop, buyers, make_badge):
    badge = make_badge("spend", amount=Decimal("50.00"), period_days=30)
    buyer = buyers[0]
    old = buy(buyer, shop=shop)
    type(old).objects.filter(pk=old.pk).update(paid_at=timezone.now() - timedelta(days=31))
    for _ in range(2):
        _run_order_handler_twice(buy(buyer, shop=shop))
    assert _awards(badge) == []  # 40.00 in the period (the old 20.00 is outside it)
    _run_order_handler_twice(buy(buyer, shop=shop))
    assert _awards(badge) == [(buyer.pk, "", "granted")]  # 60.00


def test_a_refunded_order_earns_nothing_when_its_event_comes_late(drop, creator, buyers, make_badge):
    badge = make_badge("first_buyers", count=5)
    order = buy(buyers[0], stream=drop)
    order_refund(order=order, actor=creator, restock=True, reason="mistake")
    assert handle("order.placed", ON_ORDER, order=order.pk) == ["applied"]
    assert _awards(badge) == []


def test_refunds_do_not_revoke(drop, creator, buyers, make_badge):
    badge = make_badge("first_buyers", count=5)
    order = buy(buyers[0], stream=drop)
    handle("order.placed", ON_ORDER, order=order.pk)
    order_refund(order=order, actor=creator, restock=True, reason="mistake")
    assert _awards(badge) == [(buyers[0].pk, f"stream:{drop.pk}", "granted")]


def test_needs_review_leaves_the_award_pending(drop, buyers, make_badge):
    badge = make_badge("first_buyers", count=5, needs_review=True)
    _run_order_handler_twice(buy(buyers[0], stream=drop))
    assert _awards(badge) == [(buyers[0].pk, f"stream:{drop.pk}", "pending")]


def test_inactive_badges_award_nothing(drop, buyers, make_badge):
    badge = make_badge("first_buyers", count=5, is_active=False)
    _run_order_handler_twice(buy(buyers[0], stream=drop))
    assert _awards(badge) == []


def test_another_shops_orders_earn_nothing(drop, buyers, make_badge):
    from tests.factories import CreatorFactory, make_sku

    other_shop = CreatorFactory().shop
    make_sku(other_shop, code="TEE", price="20.00", stock=5)
    badge = make_badge("repeat", count=1)
    _run_order_handler_twice(buy(buyers[0], shop=other_shop))
    assert _awards(badge) == []
