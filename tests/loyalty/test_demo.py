"""The loyalty demo steps (docs/loyalty.md, "Demo"): the demo drop's two badges (one needing
review, with a 10 % perk), "Insider" (early access), two tiers (Silver's free shipping), a
queue of granted and pending awards, and past orders for the retention chart; running
seed_demo twice duplicates nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.accounts.models import Shop
from apps.loyalty.demo import DEMO_HISTORY
from apps.loyalty.models import Award, Badge, Perk, Tier
from apps.loyalty.retention import retention_of
from apps.orders.models import Order
from apps.personalization.demo import DEMO_CO_PURCHASES
from apps.streams.models import FlashDeal, Stream
from tests.helpers import events_since, last_event_id

pytestmark = pytest.mark.django_db


def _snapshot():
    return (
        list(Badge.objects.order_by("pk").values_list("pk", "name", "stream_id")),
        list(Tier.objects.order_by("pk").values_list("pk", "name", "threshold")),
        list(Award.objects.order_by("pk").values_list("pk", "badge__name", "user__email", "status")),
    )


def test_the_demo_has_badges_tiers_and_a_queue_and_seeding_twice_duplicates_nothing():
    call_command("seed_demo")
    drop = Stream.objects.get(title="Friday night drop")

    early = Badge.objects.get(name="Early supporter")
    assert (early.shop, early.rule, early.count, early.stream, early.needs_review, early.perk_kind) == (
        drop.shop, "first_buyers", 1000, drop, False, ""
    )  # fmt: skip
    superfan = Badge.objects.get(name="Superfan")
    assert (superfan.stream, superfan.needs_review, superfan.perk_kind, superfan.perk_percent) == (
        drop, True, "percent_off", Decimal("10.00")
    )  # fmt: skip
    assert list(Tier.objects.filter(shop=drop.shop).values_list("name", "threshold", "period")) == [
        ("Silver", Decimal("50.00"), "lifetime"),
        ("Gold", Decimal("200.00"), "lifetime"),
    ]
    statuses = sorted(Award.objects.values_list("badge__name", "user__email", "status"))
    assert statuses == [
        ("Early supporter", "fan1@demo.local", "granted"),
        ("Early supporter", "fan2@demo.local", "granted"),
        ("Superfan", "fan1@demo.local", "pending"),
        ("Superfan", "fan2@demo.local", "pending"),
        ("Superfan", "fan3@demo.local", "pending"),
    ]
    assert set(Award.objects.values_list("scope", flat=True)) == {f"stream:{drop.pk}"}
    assert not Award.objects.filter(user__email="viewer@demo.local").exists()  # earns them live

    before = _snapshot()
    call_command("seed_demo")
    assert _snapshot() == before


def test_the_demo_shop_charges_shipping_silver_waives_it_and_insider_gives_early_access():
    call_command("seed_demo")
    drop = Stream.objects.get(title="Friday night drop")
    assert drop.shop.shipping_fee == Decimal("4.90")
    assert list(Tier.objects.filter(shop=drop.shop).values_list("name", "perk_kind", "perk_percent")) == [
        ("Silver", "free_shipping", None),
        ("Gold", "percent_off", Decimal("15.00")),
    ]
    insider = Badge.objects.get(name="Insider")
    assert (insider.rule, insider.count, insider.stream, insider.needs_review) == ("repeat", 3, None, False)
    assert (insider.perk_kind, insider.perk_minutes) == ("early_access", 30)
    # The deal a holder can buy early opens within the perk's minutes of the seed.
    later = FlashDeal.objects.get(stream=drop, status=FlashDeal.Status.SCHEDULED)
    assert later.opens_at - timezone.now() < timedelta(minutes=insider.perk_minutes)


def test_a_shop_creator_who_changed_the_fee_keeps_it():
    call_command("seed_demo")
    shop = Stream.objects.get(title="Friday night drop").shop
    Shop.objects.filter(pk=shop.pk).update(shipping_fee=Decimal("0.00"))
    call_command("seed_demo")
    shop.refresh_from_db()
    assert shop.shipping_fee == Decimal("0.00")


@pytest.mark.django_db(transaction=True)
def test_the_demo_has_past_orders_placed_through_the_buy_path_so_retention_has_cohorts():
    """The history runs after the seed's transaction commits (order_place commits by
    itself): real buys, so their handlers ran (Insider for a third order, Silver's perk at
    50.00), then dated back over eight weeks; running it again buys nothing."""
    mark = last_event_id()
    call_command("seed_demo")
    shop = Stream.objects.get(title="Friday night drop").shop
    past = Order.objects.filter(shop=shop, idempotency_key__startswith="demo-history-")
    assert past.count() == len(DEMO_HISTORY) and set(past.values_list("status", flat=True)) == {"paid"}
    # ... and the personalisation demo's regulars' co-purchases (apps/personalization/demo.py).
    assert len(events_since(mark, "order.placed")) == len(DEMO_HISTORY) + len(DEMO_CO_PURCHASES)
    assert all(o.paid_at == o.created_at and o.paid_at < timezone.now() - timedelta(hours=12) for o in past)
    assert set(past.values_list("shipping_fee", flat=True)) == {Decimal("4.90")}

    # The handlers' awards: the two buyers with a third order hold Insider, with its perk.
    insiders = Award.objects.filter(badge__name="Insider", status="granted")
    assert sorted(insiders.values_list("user__email", flat=True)) == ["fan1@demo.local", "shopper3@demo.local"]
    assert sorted(Perk.objects.filter(kind="early_access").values_list("user__email", "minutes")) == [
        ("fan1@demo.local", 30),
        ("shopper3@demo.local", 30),
    ]
    # Silver reached at 50.00; shopper3's next order used the free shipping.
    (waived,) = past.exclude(shipping_adjustments=[])
    assert waived.buyer.email == "shopper3@demo.local" and waived.shipping_total == Decimal("0.00")
    assert Perk.objects.get(kind="free_shipping", order=waived).used_at is not None

    retention = retention_of(shop=shop)
    # Nine past buyers (five repeat), and the personalisation demo's six regulars (one repeats).
    assert sum(c.buyers for c in retention.cohorts) == 15 and sum(c.repeat for c in retention.cohorts) == 6
    assert len([c for c in retention.cohorts if c.buyers]) >= 6  # several weeks
    assert (retention.holders.buyers, retention.others.buyers) == (3, 12)  # fan1, fan2, shopper3 hold badges
    assert not Award.objects.filter(user__email="viewer@demo.local").exists()

    before = (_snapshot(), list(past.values_list("pk", "paid_at")))
    again = last_event_id()
    call_command("seed_demo")
    assert (_snapshot(), list(past.values_list("pk", "paid_at"))) == before
    assert events_since(again, "order.placed") == []
