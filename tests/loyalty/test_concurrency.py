"""Real concurrency on PostgreSQL, with the spine's handlers actually running (eagerly, in
each buyer's thread, after its commit): 50 buyers at once, first N buyers -> exactly N."""

from __future__ import annotations

import pytest

from apps.loyalty.models import Award
from apps.orders.models import Order
from creatorcommerce.spine.models import HandlerRun
from tests.factories import make_buyer
from tests.helpers import captured_events, run_concurrently

from .conftest import ON_ORDER, buy

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BUYERS = 50
N = 7


def test_first_n_buyers_under_50_concurrent_buys_gives_exactly_n(drop, make_badge):
    badge = make_badge("first_buyers", count=N)
    buyers = [make_buyer(display_name=f"Fan {i}") for i in range(BUYERS)]
    with captured_events() as events:
        orders = run_concurrently(lambda buyer: buy(buyer, stream=drop), [(b,) for b in buyers], workers=BUYERS)
    assert len({o.pk for o in orders}) == BUYERS
    assert Order.objects.filter(stream=drop, status=Order.Status.PAID).count() == BUYERS
    # Every order.placed was handled once, and exactly N distinct buyers got the badge.
    assert HandlerRun.objects.filter(handler=ON_ORDER).count() == BUYERS
    awards = Award.objects.filter(badge=badge, scope=f"stream:{drop.pk}")
    assert awards.count() == N
    assert awards.values("user").distinct().count() == N
    assert len(events.of("badge.awarded")) == N
    # Redelivering every event changes nothing.
    from creatorcommerce.spine.tasks import apply_handler

    for event_type, payload, _ in events.of("order.placed"):
        from creatorcommerce.spine.models import OutboxEvent

        event = OutboxEvent.objects.get(type=event_type, payload__order=payload["order"])
        assert apply_handler(event.pk, ON_ORDER) == "duplicate"
    assert awards.count() == N


def test_one_buyer_buying_many_times_at_once_gets_one_award(drop, make_badge):
    badge = make_badge("first_buyers", count=N)
    buyer = make_buyer(display_name="Eager")
    run_concurrently(lambda _: buy(buyer, stream=drop), [(i,) for i in range(20)], workers=20)
    assert Award.objects.filter(badge=badge).count() == 1


def test_repeat_badge_under_concurrent_orders_of_one_buyer_is_awarded_once(shop, make_badge):
    badge = make_badge("repeat", count=3)
    buyer = make_buyer(display_name="Regular")
    with captured_events() as events:
        run_concurrently(lambda _: buy(buyer, shop=shop), [(i,) for i in range(12)], workers=12)
    assert Award.objects.filter(badge=badge, user=buyer).count() == 1
    assert len(events.of("badge.awarded")) == 1
