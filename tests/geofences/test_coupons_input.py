"""Coupons and bad or large input, a coupon on a flash deal's line, and a cap lowered while
a reservation holds one of its redemptions (docs/pricing.md, "Stacking" and "Claims";
docs/geofences.md). On either database."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.catalog.models import StockLevel
from apps.geofences.coupons import geo_offer_save
from apps.geofences.models import Coupon, GeoOffer
from apps.orders.models import IdempotencyRecord, Order
from apps.orders.services import order_place, order_release, order_reserve, request_fingerprint
from apps.pricing.offers import Context
from apps.pricing.selectors import price_quote
from apps.streams.models import FlashDeal, Stream
from apps.streams.services import deal_open, pin_add, stream_start
from tests.factories import make_buyer, make_sku

from .coupon_helpers import T0, coupon_buy, issue, make_offer

pytestmark = pytest.mark.django_db


def _post(client, url, body, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(url, json.dumps(body), content_type="application/json", headers=headers)


# -- bad coupon codes: 4xx with a code, never a 500, nothing written ------------------------------

BAD_CODES = [
    ("Z" * 64, 404, "coupon_not_found"),  # the longest the field takes; no coupon is that long
    ("Z" * 65, 400, "invalid"),
    ("Z" * 10_000, 400, "invalid"),
    ("", 400, "invalid"),
    ("   ", 400, "invalid"),
    (None, 400, "invalid"),
    (12345, 400, "invalid"),
    (["ABC"], 400, "invalid"),
    ({"code": "ABC"}, 400, "invalid"),
    ("' OR 1=1 --", 404, "coupon_not_found"),
    ("%_%", 404, "coupon_not_found"),
    ("ÄÖÜßçğ😀", 404, "coupon_not_found"),
    ("a\tb", 400, "invalid"),
    ("bell\x07", 400, "invalid"),
    ("rtl\u202eabc", 400, "invalid"),
]


@pytest.mark.parametrize(("code", "status", "error"), BAD_CODES, ids=[f"bad{i}" for i in range(len(BAD_CODES))])
def test_a_bad_coupon_code_is_a_4xx_with_a_code_and_writes_nothing(client, code, status, error):
    buyer, sku = make_buyer(), make_sku(stock=5)
    issue(buyer, make_offer(sku.shop), at=timezone.now())
    client.force_login(buyer)
    body = {"lines": [{"sku": sku.code, "quantity": 1}], "shop": sku.shop.slug, "coupon": code}
    quote = _post(client, "/api/v1/quotes/", body)
    buy = _post(client, "/api/v1/orders/", body, key="bad-coupon-0001")
    for response in (quote, buy):
        assert (response.status_code, response.json()["code"]) == (status, error), response.json()
    assert not Order.objects.exists()
    assert StockLevel.objects.get(sku=sku).available == 5
    assert not Coupon.objects.filter(redeemed_at__isnull=False).exists()
    # A refusal that is the buy's answer is kept under the key (404); a 400 never reaches it.
    assert IdempotencyRecord.objects.filter(key="bad-coupon-0001").count() == (1 if status == 404 else 0)


def test_a_coupon_code_is_found_whatever_its_case_and_surrounding_blanks(client):
    buyer, sku = make_buyer(), make_sku(price="10.00", stock=5)
    coupon = issue(buyer, make_offer(sku.shop, decay_minutes=0), at=timezone.now())
    client.force_login(buyer)
    body = {"lines": [{"sku": sku.code, "quantity": 1}], "shop": sku.shop.slug, "coupon": f"  {coupon.code.lower()} "}
    response = _post(client, "/api/v1/orders/", body, key="case-coupon-01")
    assert response.status_code == 201, response.json()
    assert response.json()["total"] == "8.00"


# -- a coupon on the most lines a buy takes -------------------------------------------------------


def test_a_capped_shop_wide_coupon_on_twenty_lines_is_one_redemption_and_quote_equals_charge():
    buyer = make_buyer()
    first = make_sku(price="1.50", stock=3)
    skus = [first] + [make_sku(first.shop, price="1.50", stock=3) for _ in range(19)]
    offer = make_offer(first.shop, kind="amount", start_value=Decimal("20.00"), end_value=Decimal("20.00"), cap=2)
    coupon = issue(buyer, offer)
    lines = [(sku.code, 1) for sku in skus]
    quote = price_quote(buyer=buyer, lines=lines, context=Context(coupon=coupon.code, now=T0))
    status, body = coupon_buy(buyer, lines, coupon=coupon.code, now=T0)
    assert status == 201, body
    # 20.00 off once, in line order: 13 lines free (19.50), 0.50 off the 14th, the rest at list price.
    assert [line["total"] for line in body["lines"]] == ["0.00"] * 13 + ["1.00"] + ["1.50"] * 6
    assert body["total"] == str(quote.total) == "10.00"
    assert body["lines"] == quote.body()["lines"]
    order = Order.objects.get(pk=body["id"])
    assert order.redemptions == [f"coupon:{coupon.pk}", f"geo_offer:{offer.pk}"]
    assert GeoOffer.objects.get(pk=offer.pk).redemptions_left == 1
    assert [level.available for level in StockLevel.objects.filter(sku__in=skus)] == [2] * 20


def test_twenty_one_lines_with_a_coupon_are_refused_before_anything(client):
    buyer = make_buyer()
    first = make_sku(stock=3)
    skus = [first] + [make_sku(first.shop, stock=3) for _ in range(20)]
    coupon = issue(buyer, make_offer(first.shop), at=timezone.now())
    client.force_login(buyer)
    body = {"lines": [{"sku": s.code, "quantity": 1} for s in skus], "shop": first.shop.slug, "coupon": coupon.code}
    response = _post(client, "/api/v1/orders/", body, key="too-many-lines-1")
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    coupon.refresh_from_db()
    assert coupon.redeemed_at is None and not Order.objects.exists()


# -- a coupon on a line a flash deal prices -------------------------------------------------------


def test_a_sku_coupon_on_a_flash_deal_line_takes_its_percentage_off_the_deal_price():
    """docs/pricing.md, "Stacking": the deal's price replaces the list price (rule 1), the
    coupon is taken off what the line costs then (rule 2); the units still come out of the
    deal and count under its per-buyer limit."""
    buyer = make_buyer()
    sku = make_sku(price="20.00", stock=30)
    now = timezone.now()
    stream = Stream.objects.create(shop=sku.shop, title="Live", starts_at=now - timedelta(minutes=5))
    pin_add(stream=stream, sku=sku)
    stream = stream_start(stream=stream, now=now)
    deal = FlashDeal.objects.create(
        stream=stream,
        sku=sku,
        price="12.00",
        quantity=5,
        per_buyer_limit=2,
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(hours=1),
    )
    deal_open(deal=deal)
    offer = make_offer(sku.shop, sku=sku, start_value=Decimal("25.00"), decay_minutes=0)
    coupon = issue(buyer, offer, at=now)

    quote = price_quote(
        buyer=buyer, lines=[(sku.code, 2)], context=Context(stream=stream.pk, coupon=coupon.code, now=now)
    )
    body = {"lines": [{"sku": sku.code, "quantity": 2}], "stream": stream.pk, "coupon": coupon.code}
    outcome = order_place(
        buyer=buyer,
        lines=[(sku.code, 2)],
        stream_id=stream.pk,
        coupon=coupon.code,
        idempotency_key="deal-and-coupon",
        fingerprint=request_fingerprint(body),
        now=now,
    )
    assert outcome.status == 201, outcome.body
    (line,) = outcome.body["lines"]
    assert [(a["source"], a["amount"]) for a in line["adjustments"]] == [("deal", "-16.00"), ("coupon", "-6.00")]
    assert line["total"] == outcome.body["total"] == str(quote.total) == "18.00"
    assert outcome.body["lines"] == quote.body()["lines"]
    order = Order.objects.get(pk=outcome.body["id"])
    assert order.redemptions == [f"coupon:{coupon.pk}"]
    (order_line,) = order.lines.all()
    assert (order_line.unit_source, order_line.allowance_key) == (f"deal:{deal.pk}", f"deal:{deal.pk}")
    assert FlashDeal.objects.get(pk=deal.pk).remaining == 3
    assert StockLevel.objects.get(sku=sku).available == 25  # the deal's 5 came out of it when it opened


# -- a cap lowered while a reservation holds one of its redemptions -------------------------------


def test_releasing_after_the_cap_was_lowered_below_what_was_redeemed_gives_no_redemption_back():
    """Cap 3: two coupons paid, one held by a reservation. The creator lowers the cap to 1
    (redemptions left: max(1 - 3, 0) = 0); the reservation then expires. Two coupons remain
    redeemed, over the new cap: nothing may be given back to it, and another viewer's
    coupon is refused."""
    sku = make_sku(stock=10)
    offer = make_offer(sku.shop, cap=3)
    viewers = [make_buyer() for _ in range(4)]
    coupons = [issue(v, offer) for v in viewers]
    for viewer, coupon in zip(viewers[:2], coupons[:2], strict=True):
        assert coupon_buy(viewer, [(sku.code, 1)], coupon=coupon.code, now=T0)[0] == 201
    held = order_reserve(
        buyer=viewers[2], lines=[(sku.code, 1)], idempotency_key="held-cap", coupon=coupons[2].code, now=T0
    )
    offer = geo_offer_save(shop=sku.shop, offer=GeoOffer.objects.get(pk=offer.pk), cap=1)
    assert offer.redemptions_left == 0

    assert order_release(order_id=held.pk, to_status=Order.Status.EXPIRED)
    assert Coupon.objects.get(pk=coupons[2].pk).redeemed_at is None
    assert GeoOffer.objects.get(pk=offer.pk).redemptions_left == 0
    status, body = coupon_buy(viewers[3], [(sku.code, 1)], coupon=coupons[3].code, now=T0)
    assert (status, body["code"]) == (409, "coupon_cap_reached")
    assert Coupon.objects.filter(offer=offer, redeemed_at__isnull=False).count() == 2


def test_releasing_gives_a_redemption_back_up_to_the_cap():
    """The usual case of the same rule: a lowered cap that still leaves room."""
    sku = make_sku(stock=10)
    offer = make_offer(sku.shop, cap=4)
    viewers = [make_buyer() for _ in range(3)]
    coupons = [issue(v, offer) for v in viewers]
    assert coupon_buy(viewers[0], [(sku.code, 1)], coupon=coupons[0].code, now=T0)[0] == 201
    held = order_reserve(
        buyer=viewers[1], lines=[(sku.code, 1)], idempotency_key="held-cap-2", coupon=coupons[1].code, now=T0
    )
    offer = geo_offer_save(shop=sku.shop, offer=GeoOffer.objects.get(pk=offer.pk), cap=2)
    assert offer.redemptions_left == 0
    assert order_release(order_id=held.pk, to_status=Order.Status.EXPIRED)
    assert GeoOffer.objects.get(pk=offer.pk).redemptions_left == 1
    assert coupon_buy(viewers[2], [(sku.code, 1)], coupon=coupons[2].code, now=T0)[0] == 201
    assert GeoOffer.objects.get(pk=offer.pk).redemptions_left == 0
