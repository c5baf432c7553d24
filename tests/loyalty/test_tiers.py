"""Tiers by spend: lifetime and calendar year, refunds lowering spend, a required badge, a
tier's perk granted once and withdrawn when the tier is lost, and GET /api/v1/me/loyalty/
(docs/loyalty.md, "Perks and tiers")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.loyalty.models import Award, Perk, Tier
from apps.loyalty.tiers import loyalty_body, spend_of, standing, tier_perks_grant, tier_recheck
from apps.orders.models import Order
from apps.orders.services import order_refund
from tests.factories import StaffFactory, make_buyer, make_sku
from tests.helpers import captured_events

from .perk_helpers import buy, make_award, make_badge, make_tier

pytestmark = pytest.mark.django_db

LAST_YEAR = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)
THIS_YEAR = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _paid(buyer, sku, quantity, at):
    status, body = buy(buyer, [(sku.code, quantity)], now=at)
    assert status == 201, body
    Order.objects.filter(pk=body["id"]).update(paid_at=at)  # the confirm stamps the clock's now
    return Order.objects.get(pk=body["id"])


def test_spend_lifetime_and_this_calendar_year():
    viewer, sku = make_buyer(), make_sku(price="50.00", stock=50)
    _paid(viewer, sku, 2, LAST_YEAR)  # 100
    _paid(viewer, sku, 1, THIS_YEAR)  # 50
    _paid(make_buyer(), sku, 5, THIS_YEAR)  # someone else's
    _paid(viewer, make_sku(price="999.00"), 1, THIS_YEAR)  # another shop
    assert spend_of(user_id=viewer.pk, shop=sku.shop, now=NOW) == {
        "lifetime": Decimal("150.00"),
        "calendar_year": Decimal("50.00"),
    }


def test_calendar_year_starts_on_1_january_in_the_shop_owners_time_zone():
    viewer, sku = make_buyer(), make_sku(price="10.00")
    owner = sku.shop.owner
    owner.time_zone = "Europe/Berlin"
    owner.save(update_fields=["time_zone"])
    _paid(viewer, sku, 1, datetime(2025, 12, 31, 23, 30, tzinfo=UTC))  # 00:30 on 1 January in Berlin
    _paid(viewer, sku, 1, datetime(2025, 12, 31, 22, 30, tzinfo=UTC))  # 23:30 on 31 December in Berlin
    assert spend_of(user_id=viewer.pk, shop=sku.shop, now=NOW)["calendar_year"] == Decimal("10.00")


@pytest.mark.parametrize(
    ("period", "tier", "next_tier"),
    [
        (
            "lifetime",
            {"name": "Silver", "threshold": "100.00"},
            {"name": "Gold", "threshold": "300.00", "spend_needed": "150.00"},
        ),
        (
            "calendar_year",
            {"name": "Bronze", "threshold": "0.00"},
            {"name": "Silver", "threshold": "100.00", "spend_needed": "50.00"},
        ),
    ],
)
def test_tier_is_the_highest_threshold_reached_over_its_period(period, tier, next_tier):
    viewer, sku = make_buyer(), make_sku(price="50.00", stock=50)
    for name, threshold in (("Bronze", "0"), ("Silver", "100"), ("Gold", "300")):
        make_tier(sku.shop, name, threshold, period=period)
    _paid(viewer, sku, 2, LAST_YEAR)
    _paid(viewer, sku, 1, THIS_YEAR)
    body = loyalty_body(standing(user_id=viewer.pk, shop=sku.shop, now=NOW))
    spend = "150.00" if period == "lifetime" else "50.00"
    assert body == {"tier": tier, "spend": spend, "next_tier": next_tier}


def test_no_tiers_and_the_top_tier():
    viewer, sku = make_buyer(), make_sku(price="50.00")
    assert loyalty_body(standing(user_id=viewer.pk, shop=sku.shop, now=NOW)) == {
        "tier": None,
        "spend": "0.00",
        "next_tier": None,
    }
    make_tier(sku.shop, "Fan", "40")
    _paid(viewer, sku, 1, THIS_YEAR)
    assert loyalty_body(standing(user_id=viewer.pk, shop=sku.shop, now=NOW)) == {
        "tier": {"name": "Fan", "threshold": "40.00"},
        "spend": "50.00",
        "next_tier": None,
    }


def test_a_tier_that_requires_a_badge_needs_it_granted():
    viewer, sku = make_buyer(), make_sku(price="50.00")
    badge = make_badge(sku.shop, kind="")
    make_tier(sku.shop, "Member", "0")
    make_tier(sku.shop, "Inner circle", "10", requires_badge=badge)
    _paid(viewer, sku, 1, THIS_YEAR)
    s = standing(user_id=viewer.pk, shop=sku.shop, now=NOW)
    assert (s.tier.name, s.next_tier) == ("Member", None)  # spending does not reach it
    award = make_award(badge, viewer, status=Award.Status.PENDING)
    assert standing(user_id=viewer.pk, shop=sku.shop, now=NOW).tier.name == "Member"
    Award.objects.filter(pk=award.pk).update(status=Award.Status.GRANTED)
    assert standing(user_id=viewer.pk, shop=sku.shop, now=NOW).tier.name == "Inner circle"


def test_a_paid_order_grants_each_reached_tiers_perk_once(django_capture_on_commit_callbacks):
    viewer, sku = make_buyer(), make_sku(price="60.00", stock=10)
    silver = make_tier(sku.shop, "Silver", "50", percent="5")
    gold = make_tier(sku.shop, "Gold", "100", percent="10")
    make_tier(sku.shop, "Platinum", "1000", percent="20")
    with captured_events() as events, django_capture_on_commit_callbacks(execute=True):
        status, body = buy(viewer, [(sku.code, 2)])  # 120: silver and gold
    assert status == 201, body
    perks = {p.tier_id: p for p in Perk.objects.filter(user=viewer)}
    assert set(perks) == {silver.pk, gold.pk}
    assert [e[1]["tier"] for e in events.of("perk.granted")] == [silver.pk, gold.pk]
    assert events.of("perk.granted")[0] == (
        "perk.granted",
        {
            "perk": perks[silver.pk].pk,
            "user": viewer.pk,
            "shop": sku.shop_id,
            "kind": "percent_off",
            "award": None,
            "tier": silver.pk,
            "expires_at": None,
        },
        [f"shop.{sku.shop_id}"],
    )
    assert tier_perks_grant(user_id=viewer.pk, shop=sku.shop, now=NOW) == []  # a redelivery: nothing twice
    # The next buy gets the best of them (10 %), labelled by the tier.
    with django_capture_on_commit_callbacks(execute=True):
        status, body = buy(viewer, [(sku.code, 1)])
    assert body["lines"][0]["adjustments"] == [
        {"source": "perk", "id": perks[gold.pk].pk, "label": "Gold perk: 10% off", "amount": "-6.00"}
    ]


def test_a_refund_lowers_spend_and_withdraws_the_lost_tiers_unused_perk(django_capture_on_commit_callbacks):
    viewer, sku = make_buyer(), make_sku(price="60.00", stock=10)
    silver = make_tier(sku.shop, "Silver", "50", percent="5")
    gold = make_tier(sku.shop, "Gold", "100", percent="10")
    with django_capture_on_commit_callbacks(execute=True):
        buy(viewer, [(sku.code, 1)])  # 60: silver
    with django_capture_on_commit_callbacks(execute=True):
        _, second = buy(viewer, [(sku.code, 1)])  # silver's perk used (57.00): 117.00, gold
    silver_perk, gold_perk = Perk.objects.get(tier=silver), Perk.objects.get(tier=gold)
    assert silver_perk.used_at is not None and gold_perk.used_at is None
    order = Order.objects.get(pk=second["id"])
    with captured_events() as events, django_capture_on_commit_callbacks(execute=True):
        order_refund(order=order, actor=StaffFactory(), restock=True, reason="Returned")
    assert spend_of(user_id=viewer.pk, shop=sku.shop, now=NOW + timedelta(days=400))["lifetime"] == Decimal("60.00")
    assert events.of("perk.withdrawn") == [
        (
            "perk.withdrawn",
            {"perk": gold_perk.pk, "user": viewer.pk, "shop": sku.shop_id, "award": None, "tier": gold.pk},
            [f"shop.{sku.shop_id}"],
        )
    ]
    gold_perk.refresh_from_db()
    silver_perk.refresh_from_db()
    assert gold_perk.withdrawn_at is not None
    assert silver_perk.withdrawn_at is None  # still reached (and used anyway)
    assert tier_recheck(user=viewer, shop=sku.shop, now=NOW) == []  # again: nothing more


def test_recheck_keeps_used_perks_of_a_lost_tier():
    viewer, sku = make_buyer(), make_sku(price="60.00")
    gold = make_tier(sku.shop, "Gold", "100", percent="10")
    perk = Perk.objects.create(
        user=viewer, shop=sku.shop, kind="percent_off", percent=Decimal("10"), tier=gold, granted_at=NOW, used_at=NOW
    )
    assert tier_recheck(user=viewer, shop=sku.shop, now=NOW) == []
    perk.refresh_from_db()
    assert perk.withdrawn_at is None


# -- GET /api/v1/me/loyalty/ ------------------------------------------------------------------


def test_my_loyalty(api_client):
    viewer, sku = make_buyer(), make_sku(price="50.00")
    make_tier(sku.shop, "Fan", "40", period=Tier.Period.CALENDAR_YEAR)
    make_tier(sku.shop, "Superfan", "200", period=Tier.Period.CALENDAR_YEAR)
    status, _ = buy(viewer, [(sku.code, 1)], now=datetime.now(UTC))
    assert status == 201
    url = f"/api/v1/me/loyalty/?shop={sku.shop.slug}"
    assert api_client.get(url).status_code == 401
    api_client.force_authenticate(viewer)
    response = api_client.get(url)
    assert response.status_code == 200
    assert response.json() == {
        "tier": {"name": "Fan", "threshold": "40.00"},
        "spend": "50.00",
        "next_tier": {"name": "Superfan", "threshold": "200.00", "spend_needed": "150.00"},
    }


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("", 400, "shop_required"),
        ("?shop=", 400, "shop_required"),
        ("?shop=%20", 400, "shop_required"),
        ("?shop=no-such-shop", 404, "shop_not_found"),
        ("?shop=" + "x" * 5000, 404, "shop_not_found"),
    ],
)
def test_my_loyalty_bad_input(api_client, query, status, code):
    api_client.force_authenticate(make_buyer())
    response = api_client.get(f"/api/v1/me/loyalty/{query}")
    assert (response.status_code, response.json()["code"]) == (status, code)
