"""Running-time coupons: the value on the clock, issuing, redeeming through the pricing
layer, giving back (docs/geofences.md)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from apps.catalog.models import StockLevel
from apps.geofences.coupons import coupon_body, coupons_issue, running_value
from apps.geofences.models import Coupon, GeoOffer
from apps.orders.models import Order
from apps.orders.services import order_release, order_reserve
from apps.pricing.offers import Context
from apps.pricing.selectors import price_quote
from tests.factories import make_buyer, make_sku
from tests.helpers import captured_events

from .coupon_helpers import T0, coupon_buy, issue, make_offer, make_venue

pytestmark = pytest.mark.django_db

# -- the value on the clock -------------------------------------------------------------------

# start 20, end 5, over 30 minutes: 0.5 a minute.
PERCENT_TABLE = [(0, "20.00"), (1, "19.50"), (7, "16.50"), (29, "5.50"), (30, "5.00"), (45, "5.00")]
# start 10.00, end 1.00, over 7 minutes: 9/7 a minute, rounded half up to the cent.
AMOUNT_TABLE = [(0, "10.00"), (1, "8.71"), (2, "7.43"), (3, "6.14"), (4, "4.86"), (6, "2.29"), (7, "1.00"), (8, "1.00")]


@pytest.mark.parametrize(("k", "expected"), PERCENT_TABLE)
def test_percent_value_at_minute_k(k, expected):
    buyer, sku = make_buyer(), make_sku(price="100.00")
    offer = make_offer(sku.shop)
    coupon = issue(buyer, offer)
    for second in (0, 59):  # the value steps once a minute
        now = T0 + timedelta(minutes=k, seconds=second)
        assert coupon_body(coupon, now=now)["value_now"] == (expected if k < 60 else "0.00")
        quote = price_quote(buyer=buyer, lines=[(sku.code, 1)], context=Context(coupon=coupon.code, now=now))
        assert quote.total == Decimal("100.00") - Decimal(expected)


@pytest.mark.parametrize(("k", "expected"), AMOUNT_TABLE)
def test_amount_value_at_minute_k(k, expected):
    assert running_value(start=Decimal("10"), end=Decimal("1"), decay_minutes=7, minutes=k) == Decimal(expected)
    buyer, sku = make_buyer(), make_sku(price="50.00")
    offer = make_offer(
        sku.shop, kind="amount", start_value=Decimal("10.00"), end_value=Decimal("1.00"), decay_minutes=7
    )
    coupon = issue(buyer, offer)
    now = T0 + timedelta(minutes=k, seconds=30)
    quote = price_quote(buyer=buyer, lines=[(sku.code, 1)], context=Context(coupon=coupon.code, now=now))
    (adjustment,) = quote.lines[0].adjustments
    assert (adjustment.source, adjustment.id, adjustment.label) == ("coupon", coupon.pk, offer.label)
    assert adjustment.amount == -Decimal(expected)


def test_no_decay_is_constant_and_expiry_ends_it():
    buyer, sku = make_buyer(), make_sku(price="100.00")
    coupon = issue(buyer, make_offer(sku.shop, decay_minutes=0, expires_minutes=10))
    assert coupon.expires_at == T0 + timedelta(minutes=10)
    body = coupon_body(coupon, now=T0 + timedelta(minutes=9))
    assert (body["value_now"], body["next_value_at"]) == ("20.00", None)
    assert coupon_body(coupon, now=T0 + timedelta(minutes=10))["value_now"] == "0.00"


def test_coupon_body_shape():
    buyer, sku = make_buyer(), make_sku()
    coupon = issue(buyer, make_offer(sku.shop, sku=sku))
    assert coupon_body(coupon, now=T0 + timedelta(seconds=10)) == {
        "code": coupon.code,
        "label": "Pop-up special",
        "sku": sku.code,
        "kind": "percent",
        "value_now": "20.00",
        "next_value_at": "2026-06-01T12:01:00Z",
        "expires_at": "2026-06-01T13:00:00Z",
        "redeemed_at": None,
        "venue": coupon.offer.venue_id,
        "shop": sku.shop.slug,
        "currency": sku.shop.currency,
    }


# -- issuing ------------------------------------------------------------------------------------


def test_issue_is_one_per_viewer_per_offer_and_only_what_is_due():
    sku = make_sku()
    shop = sku.shop
    venue = make_venue(shop)
    due = make_offer(shop, venue=venue)
    make_offer(shop, venue=venue, trigger="dwell")  # another trigger
    make_offer(shop, venue=venue, is_active=False)
    make_offer(shop, venue=venue, starts_at=T0 + timedelta(minutes=1))  # not started
    make_offer(shop, venue=venue, ends_at=T0)  # ended
    capped = make_offer(shop, venue=venue, cap=1)
    GeoOffer.objects.filter(pk=capped.pk).update(redemptions_left=0)  # cap reached
    make_offer(shop)  # another venue
    viewer = make_buyer()
    with captured_events() as events:
        first = coupons_issue(user=viewer, venue_id=venue.pk, trigger="enter", now=T0)
    assert [c.offer_id for c in first] == [due.pk]
    assert coupons_issue(user=viewer, venue_id=venue.pk, trigger="enter", now=T0) == []
    assert Coupon.objects.filter(user=viewer).count() == 1
    (coupon,) = first
    assert events == [
        (
            "coupon.issued",
            {
                "coupon": coupon.pk,
                "offer": due.pk,
                "venue": venue.pk,
                "shop": shop.pk,
                "user": viewer.pk,
                "issued_at": "2026-06-01T12:00:00Z",
                "expires_at": "2026-06-01T13:00:00Z",
            },
            [f"shop.{shop.pk}"],
        )
    ]


# -- redeeming ------------------------------------------------------------------------------------


def test_quote_equals_charge_and_the_order_shows_the_coupon(django_capture_on_commit_callbacks):
    buyer, sku = make_buyer(), make_sku(price="40.00", stock=5)
    offer = make_offer(sku.shop)
    coupon = issue(buyer, offer)
    now = T0 + timedelta(minutes=10, seconds=20)  # 15.00 %
    quote = price_quote(buyer=buyer, lines=[(sku.code, 2)], context=Context(coupon=coupon.code, now=now))
    with captured_events() as events, django_capture_on_commit_callbacks(execute=True):
        status, body = coupon_buy(buyer, [(sku.code, 2)], coupon=coupon.code, now=now)
    assert status == 201, body
    assert body["total"] == str(quote.total) == "68.00"
    assert body["lines"] == quote.body()["lines"]
    assert body["lines"][0]["adjustments"] == [
        {"source": "coupon", "id": coupon.pk, "label": offer.label, "amount": "-12.00"}
    ]
    coupon.refresh_from_db()
    order = Order.objects.get(pk=body["id"])
    assert coupon.redeemed_at == now and coupon.order_id == order.pk
    assert order.redemptions == [f"coupon:{coupon.pk}"]
    redeemed = events.of("coupon.redeemed")
    assert redeemed == [
        (
            "coupon.redeemed",
            {"coupon": coupon.pk, "offer": offer.pk, "shop": sku.shop_id, "user": buyer.pk, "order": order.pk},
            [f"shop.{sku.shop_id}"],
        )
    ]
    # Used: the same coupon again is refused, nothing written.
    status, body = coupon_buy(buyer, [(sku.code, 1)], coupon=coupon.code, now=now)
    assert (status, body["code"]) == (409, "coupon_used")
    assert Order.objects.filter(buyer=buyer).count() == 1
    assert StockLevel.objects.get(sku=sku).available == 3


def _refused(buyer, sku, code, now):
    before = (Order.objects.count(), StockLevel.objects.get(sku=sku).available)
    status, body = coupon_buy(buyer, [(sku.code, 1)], coupon=code, now=now)
    assert (Order.objects.count(), StockLevel.objects.get(sku=sku).available) == before
    return status, body["code"]


def test_refusals_write_nothing():
    owner, other, sku = make_buyer(), make_buyer(), make_sku(stock=5)
    offer = make_offer(sku.shop, expires_minutes=5)
    coupon = issue(owner, offer)
    assert _refused(owner, sku, "NOSUCHCODE", T0) == (404, "coupon_not_found")
    assert _refused(other, sku, coupon.code, T0) == (403, "coupon_not_yours")
    assert _refused(owner, sku, coupon.code, T0 + timedelta(minutes=5)) == (409, "coupon_expired")
    elsewhere = make_sku(stock=5)  # another shop's SKU
    assert _refused(owner, elsewhere, coupon.code, T0) == (409, "coupon_not_applicable")
    Coupon.objects.filter(pk=coupon.pk).update(redeemed_at=T0)
    assert _refused(owner, sku, coupon.code, T0) == (409, "coupon_used")


def test_anonymous_quote_with_a_coupon_is_not_yours(api_client):
    owner, sku = make_buyer(), make_sku()
    coupon = issue(owner, make_offer(sku.shop), at=timezone.now())  # quotes value at the clock's now
    response = api_client.post(
        "/api/v1/quotes/", {"sku": sku.code, "shop": sku.shop.slug, "coupon": coupon.code}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (403, "coupon_not_yours")
    response = api_client.post(
        "/api/v1/quotes/", {"sku": sku.code, "shop": sku.shop.slug, "coupon": "NOSUCHCODE"}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (404, "coupon_not_found")
    api_client.force_authenticate(owner)
    response = api_client.post(
        "/api/v1/quotes/", {"sku": sku.code, "shop": sku.shop.slug, "coupon": coupon.code}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["lines"][0]["adjustments"][0]["source"] == "coupon"


def test_sku_coupon_applies_to_its_line_only_and_shop_wide_to_all():
    buyer = make_buyer()
    a = make_sku(price="10.00")
    b = make_sku(a.shop, price="30.00")
    venue = make_venue(a.shop)
    sku_coupon = issue(buyer, make_offer(a.shop, venue=venue, sku=b, decay_minutes=0))
    quote = price_quote(buyer=buyer, lines=[(a.code, 1), (b.code, 1)], context=Context(coupon=sku_coupon.code, now=T0))
    assert [pl.total for pl in quote.lines] == [Decimal("10.00"), Decimal("24.00")]
    with pytest.raises(Exception) as refused:  # its SKU is not among the lines
        price_quote(buyer=buyer, lines=[(a.code, 1)], context=Context(coupon=sku_coupon.code, now=T0))
    assert refused.value.code == "coupon_not_applicable"
    other = make_buyer()
    wide = issue(other, make_offer(a.shop, kind="amount", start_value=Decimal("15.00"), end_value=Decimal("15.00")))
    quote = price_quote(buyer=other, lines=[(a.code, 1), (b.code, 1)], context=Context(coupon=wide.code, now=T0))
    # amount off once per order, in line order: 10 off the first line, 5 off the second
    assert [pl.total for pl in quote.lines] == [Decimal("0.00"), Decimal("25.00")]
    assert quote.claims(buyer_id=other.pk)[0].kind == "counter"  # one redemption, whatever the lines


def test_release_gives_the_coupon_and_the_cap_back():
    buyer, sku = make_buyer(), make_sku(stock=5)
    offer = make_offer(sku.shop, cap=3)
    coupon = issue(buyer, offer)
    order = order_reserve(buyer=buyer, lines=[(sku.code, 1)], idempotency_key="reserve-c-1", coupon=coupon.code, now=T0)
    assert sorted(order.redemptions) == sorted([f"coupon:{coupon.pk}", f"geo_offer:{offer.pk}"])
    assert GeoOffer.objects.get(pk=offer.pk).redemptions_left == 2
    with captured_events() as events:
        assert order_release(order_id=order.pk, to_status=Order.Status.EXPIRED)
    coupon.refresh_from_db()
    assert coupon.redeemed_at is None and coupon.order_id is None
    assert GeoOffer.objects.get(pk=offer.pk).redemptions_left == 3
    assert events.of("coupon.returned") == [
        (
            "coupon.returned",
            {"coupon": coupon.pk, "offer": offer.pk, "shop": sku.shop_id, "user": buyer.pk},
            [f"shop.{sku.shop_id}"],
        )
    ]
    assert [e[0] for e in events][:1] == ["coupon.returned"]  # counters first, then units
    status, body = coupon_buy(buyer, [(sku.code, 1)], coupon=coupon.code, now=T0 + timedelta(minutes=1))
    assert status == 201, body  # usable again


def test_declined_payment_gives_the_coupon_back():
    buyer, sku = make_buyer(token="tok_declined"), make_sku(stock=5)
    offer = make_offer(sku.shop, cap=1)
    coupon = issue(buyer, offer)
    status, body = coupon_buy(buyer, [(sku.code, 1)], coupon=coupon.code, now=T0)
    assert (status, body["code"]) == (402, "payment_declined")
    coupon.refresh_from_db()
    assert coupon.redeemed_at is None
    assert GeoOffer.objects.get(pk=offer.pk).redemptions_left == 1
    assert StockLevel.objects.get(sku=sku).available == 5


def test_cap_reached_refuses_and_stops_issuing():
    sku = make_sku(stock=10)
    offer = make_offer(sku.shop, cap=1)
    first, second = make_buyer(), make_buyer()
    c1, c2 = issue(first, offer), issue(second, offer)
    assert coupon_buy(first, [(sku.code, 1)], coupon=c1.code)[0] == 201
    assert _refused(second, sku, c2.code, T0) == (409, "coupon_cap_reached")
    assert coupons_issue(user=make_buyer(), venue_id=offer.venue_id, trigger="enter", now=T0) == []


def test_my_coupons(api_client):
    viewer, sku = make_buyer(), make_sku()
    old = issue(viewer, make_offer(sku.shop), at=timezone.now() - timedelta(hours=2))  # expired
    new = issue(viewer, make_offer(sku.shop), at=timezone.now())
    issue(make_buyer(), new.offer)  # someone else's
    assert api_client.get("/api/v1/me/coupons/").status_code in (401, 403)
    api_client.force_authenticate(viewer)
    response = api_client.get("/api/v1/me/coupons/")
    assert response.status_code == 200
    body = response.json()
    assert [c["code"] for c in body] == [new.code, old.code]
    assert body[1]["value_now"] == "0.00" and body[0]["value_now"] == "20.00"


def test_statements_of_the_claims_on_this_database():
    """Counter claims run on SQLite one by one (claims_take), on PostgreSQL in the chain."""
    buyer, sku = make_buyer(), make_sku(stock=5)
    coupon = issue(buyer, make_offer(sku.shop, cap=2))
    status, _ = coupon_buy(buyer, [(sku.code, 1)], coupon=coupon.code)
    assert status == 201
    assert connection.vendor in ("sqlite", "postgresql")
