"""The two perks that are not a discount on the lines: free shipping (waives the shop's
shipping fee of a delivered order) and early access (a drop's flash deal sold to the holder
before it opens); docs/loyalty.md, "Perks and tiers", docs/pricing.md, "Shipping" and
"Early access"."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest

from apps.catalog.models import StockLevel
from apps.loyalty.models import Perk
from apps.orders.models import Order
from apps.orders.services import order_place, order_refund, request_fingerprint
from apps.pricing.offers import Context
from apps.pricing.selectors import price_quote
from apps.streams.models import FlashDeal, Stream
from apps.streams.services import deal_open, deal_terms_set
from creatorcommerce.signing.selectors import receipt_verify
from tests.bundle_helpers import make_venue
from tests.factories import make_buyer, make_sku
from tests.helpers import captured_events, run_concurrently

from .perk_helpers import T0, grant_perk, make_badge

pytestmark = pytest.mark.django_db

_keys = itertools.count()


def _buy(buyer, lines, *, now=T0, stream=None, shop=None, venue=None):
    body = {"lines": [{"sku": c, "quantity": q} for c, q in lines], "stream": stream and stream.pk}
    outcome = order_place(
        buyer=buyer,
        lines=lines,
        stream_id=stream.pk if stream else None,
        shop_slug=shop.slug if shop else None,
        venue_id=venue.pk if venue else None,
        idempotency_key=f"early-ship-{next(_keys):06d}",
        fingerprint=request_fingerprint(body),
        now=now,
    )
    return outcome.status, outcome.body


def _quote(buyer, lines, now=T0, **context):
    return price_quote(buyer=buyer, lines=lines, context=Context(now=now, **context))


def _shop_with_fee(fee="4.90", **sku):
    sku = make_sku(**{"price": "20.00", **sku})
    sku.shop.shipping_fee = Decimal(fee)
    sku.shop.save(update_fields=["shipping_fee"])
    return sku


# -- shipping fee and free shipping ------------------------------------------------------------


def test_a_delivered_order_pays_the_shops_fee_once_and_the_receipt_says_so():
    viewer, sku = make_buyer(), _shop_with_fee("4.90")
    other = make_sku(sku.shop, price="5.00")
    quote = _quote(viewer, [(sku.code, 2), (other.code, 1)])
    assert quote.body()["shipping"] == {"fee": "4.90", "adjustments": [], "total": "4.90"}
    status, body = _buy(viewer, [(sku.code, 2), (other.code, 1)])
    assert status == 201, body
    assert (body["subtotal"], body["discount"], body["total"]) == ("45.00", "0.00", "49.90")
    assert body["shipping"] == quote.body()["shipping"] and body["total"] == str(quote.total)
    order = Order.objects.get(pk=body["id"])
    assert (order.total, order.shipping_fee, order.shipping_total) == (
        Decimal("49.90"),
        Decimal("4.90"),
        Decimal("4.90"),
    )
    receipt = receipt_verify(token=body["receipt"])
    assert receipt["shipping"] == body["shipping"] and receipt["total"] == "49.90"


def test_a_shop_without_a_fee_keeps_its_receipts_shape():
    viewer, sku = make_buyer(), make_sku(price="20.00")
    status, body = _buy(viewer, [(sku.code, 1)])
    assert (status, body["total"], body["shipping"]["total"]) == (201, "20.00", "0.00")
    assert "shipping" not in receipt_verify(token=body["receipt"])


def test_a_pickup_pays_no_shipping():
    viewer, sku = make_buyer(), _shop_with_fee("4.90")
    venue = make_venue(sku.shop, stock={sku: 5})
    status, body = _buy(viewer, [(sku.code, 1)], venue=venue)
    assert status == 201, body
    assert (body["total"], body["shipping"]) == ("20.00", {"fee": "0.00", "adjustments": [], "total": "0.00"})


def test_free_shipping_waives_the_fee_and_is_used_with_a_percent_perk_in_one_order(
    django_capture_on_commit_callbacks,
):
    viewer, sku = make_buyer(), _shop_with_fee("4.90")
    _, free = grant_perk(make_badge(sku.shop, name="Gold", kind="free_shipping"), viewer)
    _, percent = grant_perk(make_badge(sku.shop, name="Superfan", percent="10.00"), viewer)
    quote = _quote(viewer, [(sku.code, 1)])
    waiver = {"source": "perk", "id": free.pk, "label": "Gold perk: free shipping", "amount": "-4.90"}
    assert quote.body()["shipping"] == {"fee": "4.90", "adjustments": [waiver], "total": "0.00"}
    with captured_events() as events, django_capture_on_commit_callbacks(execute=True):
        status, body = _buy(viewer, [(sku.code, 1)])
    assert status == 201, body
    assert (body["discount"], body["total"]) == ("2.00", "18.00") == (str(quote.discount), str(quote.total))
    assert body["shipping"]["adjustments"] == [waiver]
    assert receipt_verify(token=body["receipt"])["shipping"]["adjustments"] == [waiver]
    order = Order.objects.get(pk=body["id"])
    assert sorted(order.redemptions) == sorted([f"perk:{free.pk}", f"perk:{percent.pk}"])
    assert {p.pk: p.order_id for p in Perk.objects.filter(pk__in=[free.pk, percent.pk])} == {
        free.pk: order.pk,
        percent.pk: order.pk,
    }
    assert sorted(payload["perk"] for _, payload, _ in events.of("perk.used")) == sorted([free.pk, percent.pk])
    # Used: the next delivered order pays the fee.
    status, body = _buy(viewer, [(sku.code, 1)])
    assert (status, body["total"]) == (201, "24.90")


def test_free_shipping_is_kept_when_there_is_nothing_to_waive():
    """A shop without a fee, or a pickup: the perk is not applied, so not used."""
    viewer, sku = make_buyer(), make_sku(price="20.00")
    _, free = grant_perk(make_badge(sku.shop, kind="free_shipping"), viewer)
    status, body = _buy(viewer, [(sku.code, 1)])
    assert (status, body["total"], body["shipping"]["adjustments"]) == (201, "20.00", [])
    assert Order.objects.get(pk=body["id"]).redemptions == []
    assert Perk.objects.get(pk=free.pk).used_at is None


def test_a_declined_payment_gives_free_shipping_back():
    viewer, sku = make_buyer(token="tok_declined"), _shop_with_fee("4.90")
    _, free = grant_perk(make_badge(sku.shop, kind="free_shipping"), viewer)
    status, body = _buy(viewer, [(sku.code, 1)])
    assert (status, body["code"]) == (402, "payment_declined")
    assert Perk.objects.get(pk=free.pk).used_at is None
    assert StockLevel.objects.get(sku=sku).available == 20


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_buys_waive_the_fee_once():
    buyer, sku = make_buyer(), _shop_with_fee("4.90", stock=100)
    _, free = grant_perk(make_badge(sku.shop, kind="free_shipping"), buyer)
    results = run_concurrently(lambda: _buy(buyer, [(sku.code, 1)]), [() for _ in range(10)])
    assert {status for status, _ in results} <= {201, 409}, results
    assert {body["code"] for status, body in results if status == 409} <= {"perk_used"}
    shipping = sorted(Decimal(body["shipping"]["total"]) for status, body in results if status == 201)
    assert shipping[0] == Decimal("0.00") and shipping[1:] == [Decimal("4.90")] * (len(shipping) - 1), results
    (order,) = Order.objects.filter(buyer=buyer, redemptions__contains=[f"perk:{free.pk}"])
    assert (order.total, order.shipping_total) == (Decimal("20.00"), Decimal("0.00"))
    assert StockLevel.objects.get(sku=sku).available == 100 - len(shipping)


# -- early access to a drop's deal -------------------------------------------------------------


def _drop(sku, *, opens_in=10, quantity=3, per_buyer_limit=None, location=None):
    """A scheduled stream of ``sku``'s shop with a deal on it at 12.00 opening ``opens_in``
    minutes after T0."""
    stream = Stream.objects.create(shop=sku.shop, title="Drop", starts_at=T0 + timedelta(minutes=opens_in - 1))
    deal = FlashDeal.objects.create(
        stream=stream,
        sku=sku,
        location=location,
        price=Decimal("12.00"),
        quantity=quantity,
        per_buyer_limit=per_buyer_limit,
        opens_at=T0 + timedelta(minutes=opens_in),
        closes_at=T0 + timedelta(hours=2),
    )
    return stream, deal


def _early_badge(shop, minutes=15):
    return make_badge(shop, name="Superfan", kind="early_access", perk_minutes=minutes)


def test_an_early_access_holder_buys_the_deal_before_it_opens(django_capture_on_commit_callbacks):
    viewer, sku = make_buyer(), make_sku(price="20.00", stock=10)
    stream, deal = _drop(sku, opens_in=10)
    _, perk = grant_perk(_early_badge(sku.shop, minutes=15), viewer)
    quote = _quote(viewer, [(sku.code, 2)], stream=stream.pk)
    with captured_events() as events, django_capture_on_commit_callbacks(execute=True):
        status, body = _buy(viewer, [(sku.code, 2)], stream=stream)
    assert status == 201, body
    assert body["total"] == str(quote.total) == "24.00"
    assert body["lines"][0]["adjustments"] == [
        {
            "source": "deal",
            "id": deal.pk,
            "label": "Flash deal, early (Superfan perk: early access)",
            "amount": "-16.00",
        }
    ]
    assert body["lines"] == quote.body()["lines"]
    deal.refresh_from_db()
    assert (deal.status, deal.early_sold, deal.remaining) == ("scheduled", 2, 0)
    assert StockLevel.objects.get(sku=sku).available == 8  # off the shelf at once
    (line,) = Order.objects.get(pk=body["id"]).lines.all()
    assert line.unit_source == f"deal_early:{deal.pk}"
    perk.refresh_from_db()
    assert (perk.used_at, perk.order_id) == (T0, body["id"])
    # Viewers learn nothing of a deal before it opens: stock moved, no deal.changed.
    assert [t for t, _, _ in events if t.startswith("deal.")] == []
    assert [p["sku"] for t, p, _ in events if t == "stock.changed"] == [sku.code]
    # Opening sets aside what is left of the deal's quantity.
    deal_open(deal=deal, now=T0 + timedelta(minutes=10))
    deal.refresh_from_db()
    assert (deal.status, deal.remaining) == ("open", 1)
    assert StockLevel.objects.get(sku=sku).available == 7


def test_without_early_access_or_outside_its_window_the_deal_is_not_offered():
    viewer, holder, sku = make_buyer(), make_buyer(), make_sku(price="20.00", stock=10)
    stream, _ = _drop(sku, opens_in=30)
    _, perk = grant_perk(_early_badge(sku.shop, minutes=15), holder)
    assert _quote(viewer, [(sku.code, 1)], stream=stream.pk).total == Decimal("20.00")
    assert _quote(holder, [(sku.code, 1)], stream=stream.pk).total == Decimal("20.00")  # opens in 30 > 15
    status, body = _buy(holder, [(sku.code, 1)], stream=stream)
    assert (status, body["total"], body["lines"][0]["adjustments"]) == (201, "20.00", [])
    assert Perk.objects.get(pk=perk.pk).used_at is None
    assert _quote(holder, [(sku.code, 1)], now=T0 + timedelta(minutes=15), stream=stream.pk).total == Decimal("12.00")
    # Another shop's perk, or a buy outside the stream, gets nothing early.
    assert _quote(holder, [(sku.code, 1)], now=T0 + timedelta(minutes=15), shop=sku.shop.slug).total == Decimal("20.00")


def test_early_sales_keep_the_deals_limits_and_give_back_on_a_release_and_a_refund():
    viewer, sku = make_buyer(token="tok_declined"), make_sku(price="20.00", stock=10)
    stream, deal = _drop(sku, quantity=3, per_buyer_limit=1)
    badge = _early_badge(sku.shop)
    _, perk = grant_perk(badge, viewer)
    status, body = _buy(viewer, [(sku.code, 2)], stream=stream)
    assert (status, body["code"], body["limit"]) == (409, "buyer_limit_exceeded", 1)
    status, body = _buy(viewer, [(sku.code, 1)], stream=stream)
    assert (status, body["code"]) == (402, "payment_declined")  # released: all given back
    deal.refresh_from_db()
    assert deal.early_sold == 0 and StockLevel.objects.get(sku=sku).available == 10
    assert Perk.objects.get(pk=perk.pk).used_at is None
    # A refund with restock before the deal opens: the unit may be sold early again.
    payer = make_buyer()
    grant_perk(badge, payer)
    status, body = _buy(payer, [(sku.code, 1)], stream=stream)
    assert status == 201, body
    order_refund(order=Order.objects.get(pk=body["id"]), actor=sku.shop.owner, restock=True, reason="changed mind")
    deal.refresh_from_db()
    assert deal.early_sold == 0 and StockLevel.objects.get(sku=sku).available == 10


def test_a_deal_with_early_sales_keeps_its_sku_and_at_least_what_it_sold():
    viewer, sku = make_buyer(), make_sku(price="20.00", stock=10)
    stream, deal = _drop(sku, quantity=3)
    grant_perk(_early_badge(sku.shop), viewer)
    assert _buy(viewer, [(sku.code, 2)], stream=stream)[0] == 201
    edited = FlashDeal.objects.get(pk=deal.pk)
    edited.quantity, edited.sku = 1, make_sku(sku.shop)
    result = deal_terms_set(deal=edited, changed=["quantity", "sku"])
    assert (result.saved, sorted(result.refused)) == ([], ["quantity", "sku"])
    edited.quantity = 5
    assert deal_terms_set(deal=edited, changed=["quantity"]).saved == ["quantity"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_early_sales_never_go_past_the_deals_quantity():
    """Six holders of early access, a deal of 4 units, each buys 1 at once: exactly 4 get
    it early (the deal's conditional count), the others are told it sold out; the shelf
    lost exactly 4."""
    sku = make_sku(price="20.00", stock=50)
    stream, deal = _drop(sku, quantity=4)
    badge = _early_badge(sku.shop)
    holders = [make_buyer() for _ in range(6)]
    for holder in holders:
        grant_perk(badge, holder)
    results = run_concurrently(lambda h: _buy(h, [(sku.code, 1)], stream=stream), [(h,) for h in holders])
    assert sorted(status for status, _ in results) == [201] * 4 + [409] * 2, results
    assert {body["code"] for status, body in results if status == 409} == {"sold_out"}
    assert {body["total"] for status, body in results if status == 201} == {"12.00"}
    deal.refresh_from_db()
    assert deal.early_sold == 4
    assert StockLevel.objects.get(sku=sku).available == 46
    assert Perk.objects.filter(user__in=holders, used_at__isnull=False).count() == 4


def test_a_drop_whose_deal_sold_early_cannot_be_deleted_and_its_refund_restocks_the_shelf():
    """The review's case: deleting the drop would take the deal a refund gives units back
    through; the deletion is refused (admin and service), the refund works."""
    from apps.streams.exceptions import StreamHasOrders
    from apps.streams.services import deal_delete, stream_delete

    viewer, sku = make_buyer(), make_sku(price="20.00", stock=10)
    stream, deal = _drop(sku, quantity=3)
    grant_perk(_early_badge(sku.shop), viewer)
    status, body = _buy(viewer, [(sku.code, 1)], stream=stream)
    assert status == 201, body
    with pytest.raises(StreamHasOrders):
        stream_delete(stream=stream)
    from apps.streams.exceptions import DealHasOrders

    with pytest.raises(DealHasOrders):
        deal_delete(deal=deal)
    order_refund(order=Order.objects.get(pk=body["id"]), actor=sku.shop.owner, restock=True, reason="wrong size")
    assert Order.objects.get(pk=body["id"]).status == "refunded"
    assert StockLevel.objects.get(sku=sku).available == 10


def test_early_deals_tell_the_holder_what_their_pins_cost(api_client):
    """``GET /api/v1/streams/{id}/early-deals/``: the holder's pin shows the price a quote
    and the buy give (the deal's); everyone else gets nothing; once used, nothing."""
    from django.utils import timezone

    viewer, holder, sku = make_buyer(), make_buyer(), make_sku(price="20.00", stock=10)
    stream = Stream.objects.create(shop=sku.shop, title="Drop", starts_at=timezone.now() + timedelta(minutes=9))
    from apps.streams.services import pin_add

    pin_add(stream=stream, sku=sku)
    deal = FlashDeal.objects.create(
        stream=stream,
        sku=sku,
        price=Decimal("12.00"),
        quantity=3,
        per_buyer_limit=2,
        opens_at=timezone.now() + timedelta(minutes=10),
        closes_at=timezone.now() + timedelta(hours=1),
    )
    grant_perk(_early_badge(sku.shop, minutes=15), holder, at=timezone.now())
    url = f"/api/v1/streams/{stream.pk}/early-deals/"
    assert api_client.get(url).status_code in (401, 403)
    api_client.force_authenticate(viewer)
    assert api_client.get(url).json() == []
    api_client.force_authenticate(holder)
    (early,) = api_client.get(url).json()
    assert {k: early[k] for k in ("sku", "id", "price", "units_left", "per_buyer_limit")} == {
        "sku": sku.code,
        "id": deal.pk,
        "price": "12.00",
        "units_left": 3,
        "per_buyer_limit": 2,
    }
    assert early["label"] == "Flash deal, early (Superfan perk: early access)"
    quote = api_client.post("/api/v1/quotes/", {"sku": sku.code, "stream": stream.pk}, format="json").json()
    assert quote["lines"][0]["total"] == early["price"]
    assert _buy(holder, [(sku.code, 1)], stream=stream, now=timezone.now())[0] == 201
    assert api_client.get(url).json() == []  # the perk is used
    assert api_client.get("/api/v1/streams/999999/early-deals/").status_code == 404
