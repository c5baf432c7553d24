"""Perks: granted with an award (once), withdrawn on a revoke (used ones kept), applied at
checkout by the ``perk`` offer provider (once, last, the best one), given back on a
release, recorded on the paid order (docs/loyalty.md, "Perks and tiers")."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from apps.audit.models import AuditEntry
from apps.catalog.models import StockLevel
from apps.loyalty.models import Award, Perk
from apps.loyalty.perks import perks_grant_for_award, perks_withdraw_for_award
from apps.loyalty.pricing import PerkCounter, perk_label
from apps.orders.models import Order
from apps.pricing.offers import Context
from apps.pricing.selectors import price_quote
from tests.factories import make_buyer, make_sku
from tests.helpers import captured_events

from .perk_helpers import T0, buy, grant_perk, make_award, make_badge

pytestmark = pytest.mark.django_db


# -- granting and withdrawing ----------------------------------------------------------------


def test_grant_makes_one_perk_per_award_and_says_so():
    viewer, sku = make_buyer(), make_sku()
    badge = make_badge(sku.shop, name="Superfan", percent="12.50", valid_days=30)
    award = make_award(badge, viewer)
    with captured_events() as events:
        (perk,) = perks_grant_for_award(award=award, now=T0)
        assert perks_grant_for_award(award=award, now=T0 + timedelta(hours=1)) == []  # idempotent
    assert (perk.user_id, perk.shop_id, perk.kind, perk.percent) == (
        viewer.pk,
        sku.shop_id,
        "percent_off",
        Decimal("12.50"),
    )
    assert (perk.granted_at, perk.expires_at, perk.award_id, perk.tier_id) == (
        T0,
        T0 + timedelta(days=30),
        award.pk,
        None,
    )
    assert Perk.objects.filter(award=award).count() == 1
    assert events == [
        (
            "perk.granted",
            {
                "perk": perk.pk,
                "user": viewer.pk,
                "shop": sku.shop_id,
                "kind": "percent_off",
                "award": award.pk,
                "tier": None,
                "expires_at": "2026-07-01T12:00:00Z",
            },
            [f"shop.{sku.shop_id}"],
        )
    ]


def test_no_perk_for_a_pending_or_revoked_award_or_a_badge_without_one():
    viewer, sku = make_buyer(), make_sku()
    badge = make_badge(sku.shop)
    assert perks_grant_for_award(award=make_award(badge, viewer, status=Award.Status.PENDING), now=T0) == []
    other = make_badge(sku.shop, kind="")
    assert perks_grant_for_award(award=make_award(other, viewer), now=T0) == []
    assert not Perk.objects.exists()


def test_withdraw_takes_the_unused_perk_and_keeps_the_used_one():
    viewer, sku = make_buyer(), make_sku()
    _, unused = grant_perk(make_badge(sku.shop), viewer)
    used_award, used = grant_perk(make_badge(sku.shop), viewer)
    Perk.objects.filter(pk=used.pk).update(used_at=T0)
    later = T0 + timedelta(days=1)
    with captured_events() as events:
        assert perks_withdraw_for_award(award=unused.award, now=later) == ([unused], [])
        assert perks_withdraw_for_award(award=unused.award, now=later) == ([], [])  # again: nothing more
        assert perks_withdraw_for_award(award=used_award, now=later) == ([], [used])
    assert Perk.objects.get(pk=unused.pk).withdrawn_at == later
    assert Perk.objects.get(pk=used.pk).withdrawn_at is None
    assert events == [
        (
            "perk.withdrawn",
            {"perk": unused.pk, "user": viewer.pk, "shop": sku.shop_id, "award": unused.award_id, "tier": None},
            [f"shop.{sku.shop_id}"],
        )
    ]


# -- at checkout ------------------------------------------------------------------------------


def _quote(buyer, lines, now=T0, **context):
    return price_quote(buyer=buyer, lines=lines, context=Context(now=now, **context))


def test_a_perk_is_a_percent_off_every_line_labelled_by_its_badge():
    viewer = make_buyer()
    tee = make_sku(price="20.00")
    cap = make_sku(tee.shop, price="9.99")
    _, perk = grant_perk(make_badge(tee.shop, name="Superfan", percent="10.00"), viewer)
    quote = _quote(viewer, [(tee.code, 2), (cap.code, 1)])
    assert [[a.body() for a in pl.adjustments] for pl in quote.lines] == [
        [{"source": "perk", "id": perk.pk, "label": "Superfan perk: 10% off", "amount": "-4.00"}],
        [{"source": "perk", "id": perk.pk, "label": "Superfan perk: 10% off", "amount": "-1.00"}],
    ]
    assert quote.total == Decimal("44.99")
    (claim,) = [c for c in quote.claims(buyer_id=viewer.pk) if c.kind == "counter"]  # one use, two lines
    assert (claim.source, claim.target) == ("perk", perk.pk)


def test_only_the_best_usable_perk_of_the_shop_applies():
    viewer, sku = make_buyer(), make_sku(price="100.00")
    grant_perk(make_badge(sku.shop, percent="5.00"), viewer)
    _, best = grant_perk(make_badge(sku.shop, name="Gold", percent="15.00"), viewer)
    _, expired = grant_perk(make_badge(sku.shop, percent="50.00", valid_days=1), viewer, at=T0 - timedelta(days=1))
    _, withdrawn = grant_perk(make_badge(sku.shop, percent="60.00"), viewer)
    Perk.objects.filter(pk=withdrawn.pk).update(withdrawn_at=T0)
    _, used = grant_perk(make_badge(sku.shop, percent="70.00"), viewer)
    Perk.objects.filter(pk=used.pk).update(used_at=T0)
    grant_perk(make_badge(make_sku().shop, percent="80.00"), viewer)  # another shop's
    grant_perk(make_badge(sku.shop, kind="free_shipping"), viewer)  # no fee here: nothing to waive
    (pl,) = _quote(viewer, [(sku.code, 1)]).lines
    assert [(a.source, a.id, a.label, a.amount) for a in pl.adjustments] == [
        ("perk", best.pk, "Gold perk: 15% off", Decimal("-15.00"))
    ]
    assert expired.expires_at == T0  # expired at T0 exactly: not usable


def test_anonymous_quotes_and_other_viewers_get_no_perk(api_client):
    viewer, other, sku = make_buyer(), make_buyer(), make_sku(price="10.00")
    grant_perk(make_badge(sku.shop), viewer, at=T0 - timedelta(days=1))
    assert _quote(None, [(sku.code, 1)]).lines[0].adjustments == []
    assert _quote(other, [(sku.code, 1)]).lines[0].adjustments == []
    response = api_client.post("/api/v1/quotes/", {"sku": sku.code, "shop": sku.shop.slug}, format="json")
    assert response.status_code == 200 and response.json()["total"] == "10.00"
    api_client.force_authenticate(viewer)
    response = api_client.post("/api/v1/quotes/", {"sku": sku.code, "shop": sku.shop.slug}, format="json")
    assert response.json()["total"] == "9.00"
    assert response.json()["lines"][0]["adjustments"][0]["source"] == "perk"


def test_perks_apply_last_on_what_a_coupon_left():
    """Rule 3: a perk's percent is off what the lines cost after the coupon."""
    from tests.geofences.coupon_helpers import issue, make_offer

    viewer, sku = make_buyer(), make_sku(price="100.00")
    coupon = issue(viewer, make_offer(sku.shop, decay_minutes=0, start_value=Decimal("20.00")))
    grant_perk(make_badge(sku.shop, percent="10.00"), viewer)
    (pl,) = _quote(viewer, [(sku.code, 1)], coupon=coupon.code).lines
    assert [(a.source, a.amount) for a in pl.adjustments] == [("coupon", Decimal("-20.00")), ("perk", Decimal("-8.00"))]
    assert pl.total == Decimal("72.00")


def test_quote_equals_charge_the_receipt_shows_it_and_the_order_records_it(django_capture_on_commit_callbacks):
    viewer, sku = make_buyer(), make_sku(price="40.00", stock=5)
    _, perk = grant_perk(make_badge(sku.shop, name="Superfan", percent="10.00"), viewer)
    now = T0 + timedelta(minutes=5)
    quote = _quote(viewer, [(sku.code, 2)], now=now)
    with captured_events() as events, django_capture_on_commit_callbacks(execute=True):
        status, body = buy(viewer, [(sku.code, 2)], now=now)
    assert status == 201, body
    assert body["total"] == str(quote.total) == "72.00"
    assert body["lines"] == quote.body()["lines"]
    assert body["lines"][0]["adjustments"] == [
        {"source": "perk", "id": perk.pk, "label": "Superfan perk: 10% off", "amount": "-8.00"}
    ]
    order = Order.objects.get(pk=body["id"])
    assert order.redemptions == [f"perk:{perk.pk}"]
    perk.refresh_from_db()
    assert (perk.used_at, perk.order_id) == (now, order.pk)
    assert events.of("perk.used") == [
        (
            "perk.used",
            {"perk": perk.pk, "user": viewer.pk, "shop": sku.shop_id, "order": order.pk},
            [f"shop.{sku.shop_id}"],
        )
    ]
    entry = AuditEntry.objects.get(action="perk.used", object_id=str(perk.pk))
    assert (entry.actor_id, entry.shop_id, entry.details["order"]) == (viewer.pk, sku.shop_id, order.pk)
    # The receipt the buyer keeps carries the same lines.
    from apps.orders.selectors import line_body

    assert [line_body(line) for line in order.lines.all()] == body["lines"]
    # Used: the next buy pays full price.
    status, body = buy(viewer, [(sku.code, 1)], now=now)
    assert (status, body["total"]) == (201, "40.00")


def test_the_order_placed_handler_is_idempotent(django_capture_on_commit_callbacks):
    from apps.loyalty.pricing import perk_redeemed
    from creatorcommerce.spine.models import OutboxEvent

    viewer, sku = make_buyer(), make_sku(price="10.00")
    grant_perk(make_badge(sku.shop), viewer)
    with django_capture_on_commit_callbacks(execute=True):
        status, _ = buy(viewer, [(sku.code, 1)])
    assert status == 201
    event = OutboxEvent.objects.filter(type="order.placed").latest("id")
    with captured_events() as events:
        perk_redeemed(event)  # redelivered
    assert events == []
    assert AuditEntry.objects.filter(action="perk.used").count() == 1


def test_declined_payment_gives_the_perk_back():
    viewer, sku = make_buyer(token="tok_declined"), make_sku(price="10.00", stock=5)
    _, perk = grant_perk(make_badge(sku.shop), viewer)
    with captured_events() as events:
        status, body = buy(viewer, [(sku.code, 1)])
    assert (status, body["code"]) == (402, "payment_declined")
    perk.refresh_from_db()
    assert (perk.used_at, perk.order_id, perk.withdrawn_at) == (None, None, None)
    assert events.of("perk.returned") == [
        ("perk.returned", {"perk": perk.pk, "user": viewer.pk, "shop": sku.shop_id}, [f"shop.{sku.shop_id}"])
    ]
    assert StockLevel.objects.get(sku=sku).available == 5


def test_a_release_after_a_revoke_withdraws_the_perk_instead():
    viewer, sku = make_buyer(), make_sku(price="10.00")
    award, perk = grant_perk(make_badge(sku.shop), viewer)
    Perk.objects.filter(pk=perk.pk).update(used_at=T0)  # a reservation holds it
    Award.objects.filter(pk=award.pk).update(status=Award.Status.REVOKED)
    assert perks_withdraw_for_award(award=award, now=T0) == ([], [perk])  # counted as used
    from django.db import transaction

    with transaction.atomic():
        events = PerkCounter().give_back(id=perk.pk)
    assert [e[0] for e in events] == ["perk.withdrawn"]
    perk.refresh_from_db()
    assert perk.used_at is None and perk.withdrawn_at is not None
    assert _quote(viewer, [(sku.code, 1)]).lines[0].adjustments == []


def test_refusals_name_why():
    viewer, sku = make_buyer(), make_sku()
    _, perk = grant_perk(make_badge(sku.shop, valid_days=1), viewer)
    counter = PerkCounter()
    with pytest.raises(Exception) as exc:
        counter.refused(id=perk.pk, now=T0 + timedelta(days=2))
    assert exc.value.code == "perk_expired" and exc.value.status == 409
    Perk.objects.filter(pk=perk.pk).update(withdrawn_at=T0)
    with pytest.raises(Exception) as exc:
        counter.refused(id=perk.pk, now=T0)
    assert exc.value.code == "perk_withdrawn"
    Perk.objects.filter(pk=perk.pk).update(withdrawn_at=None, used_at=T0)
    with pytest.raises(Exception) as exc:
        counter.refused(id=perk.pk, now=T0)
    assert exc.value.code == "perk_used"


def test_a_perk_taken_between_the_price_and_the_claim_refuses_the_buy(monkeypatch):
    """The buy charges what it priced: a perk used meanwhile (by a parallel buy: simulated
    here by using it right after the provider read it) refuses with 409 perk_used and
    writes nothing."""
    from apps.loyalty import pricing

    viewer, sku = make_buyer(), make_sku(price="10.00", stock=5)
    _, perk = grant_perk(make_badge(sku.shop), viewer)
    real = pricing.best_perks

    def read_then_used(**kwargs):
        found = real(**kwargs)
        Perk.objects.filter(pk=perk.pk).update(used_at=T0)
        return found

    monkeypatch.setattr(pricing, "best_perks", read_then_used)
    status, body = buy(viewer, [(sku.code, 1)])
    assert (status, body["code"]) == (409, "perk_used")
    assert not Order.objects.filter(buyer=viewer).exists()
    assert StockLevel.objects.get(sku=sku).available == 5


def test_label_formats_the_percent():
    assert perk_label(kind="percent_off", percent=Decimal("10.00"), name="Superfan") == "Superfan perk: 10% off"
    assert perk_label(kind="percent_off", percent=Decimal("12.50"), name="Gold") == "Gold perk: 12.5% off"
    assert perk_label(kind="percent_off", percent=Decimal("100.00"), name=None) == "Loyalty perk: 100% off"
    assert perk_label(kind="free_shipping", name="Gold") == "Gold perk: free shipping"
    assert perk_label(kind="early_access", name="Superfan") == "Superfan perk: early access"


# -- GET /api/v1/me/perks/ --------------------------------------------------------------------


def test_my_perks_lists_mine_without_the_withdrawn(api_client):
    viewer, sku = make_buyer(), make_sku()
    _, first = grant_perk(make_badge(sku.shop, valid_days=10), viewer, at=T0)
    _, second = grant_perk(make_badge(sku.shop), viewer, at=T0 + timedelta(hours=1))
    Perk.objects.filter(pk=second.pk).update(used_at=T0 + timedelta(hours=2))
    _, gone = grant_perk(make_badge(sku.shop), viewer, at=T0 + timedelta(hours=3))
    Perk.objects.filter(pk=gone.pk).update(withdrawn_at=T0 + timedelta(hours=4))
    grant_perk(make_badge(sku.shop), make_buyer())  # someone else's
    assert api_client.get("/api/v1/me/perks/").status_code == 401
    api_client.force_authenticate(viewer)
    response = api_client.get("/api/v1/me/perks/")
    assert response.status_code == 200
    assert response.json() == [
        {
            "id": second.pk,
            "kind": "percent_off",
            "award": second.award_id,
            "used_at": "2026-06-01T14:00:00Z",
            "expires_at": None,
        },
        {
            "id": first.pk,
            "kind": "percent_off",
            "award": first.award_id,
            "used_at": None,
            "expires_at": "2026-06-11T12:00:00Z",
        },
    ]
