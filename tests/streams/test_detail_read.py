"""``GET /api/v1/streams/<id>/`` (the page's poll while its socket is down), the stream list
and the socket snapshot read a stream through hand-written statements (``stream_get``,
``streams_pins``, ``open_deals``: docs/performance.md). Their answers must be, byte for byte,
what the ORM's reads gave: the reads the endpoint made before are kept here, for reference
only, and compared with what the endpoint answers for a stream with every case a pin can be
in."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Prefetch
from django.test import Client
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from apps.catalog.models import Location, StockLevel
from apps.pricing.policy import unit_price_now
from apps.streams.models import FlashDeal, Stream
from apps.streams.pricing import deal_offer, open_deals
from apps.streams.selectors import deal_body, stream_body, stream_snapshot, streams_list
from apps.streams.services import deal_close, deal_open, pin_add, stream_cancel, stream_end, stream_start
from tests.factories import CreatorFactory, make_sku

pytestmark = pytest.mark.django_db


# -- the ORM reads the endpoint made before (reference only) ---------------------------------


def orm_stream_get(stream_id: int) -> Stream:
    return Stream.objects.select_related("shop").filter(pk=stream_id).first()


def orm_open_deals(*, stream_ids, sku_ids=None, now=None) -> list[FlashDeal]:
    qs = FlashDeal.objects.filter(
        stream_id__in=stream_ids, status=FlashDeal.Status.OPEN, closes_at__gt=now or timezone.now()
    )
    if sku_ids is not None:
        qs = qs.filter(sku_id__in=sku_ids)
    return list(qs)


def orm_streams_pins(streams) -> dict[int, list[dict]]:
    from apps.streams.models import Pin

    ids = [s.pk for s in streams]
    pins = list(
        Pin.objects.filter(stream_id__in=ids)
        .select_related("sku__product")
        .prefetch_related(
            Prefetch(
                "sku__stock_levels",
                queryset=StockLevel.objects.filter(location__is_default=True),
                to_attr="default_levels",
            )
        )
    )
    offers: dict[tuple[int, int], list] = {}
    deals = {}
    for deal in orm_open_deals(stream_ids=ids):
        offers.setdefault((deal.stream_id, deal.sku_id), []).append(deal_offer(deal))
        deals[deal.pk] = deal
    out: dict[int, list[dict]] = {pk: [] for pk in ids}
    for pin in pins:
        sku = pin.sku
        level = sku.default_levels[0] if sku.default_levels else None
        _, applied = unit_price_now(unit_price=sku.price, sku_id=sku.pk, offers=offers.get((pin.stream_id, sku.pk), []))
        out[pin.stream_id].append(
            {
                "sku": sku.code,
                "sku_id": sku.pk,
                "title": sku.display_title,
                "image_url": sku.product.image_url,
                "price": str(sku.price),
                "currency": sku.currency,
                "per_buyer_limit": sku.per_buyer_limit,
                "available": level.available if level else 0,
                "level": level.pk if level else None,
                "version": level.version if level else 0,
                "deal": deal_body(deals[applied.id] if applied is not None and applied.source == "deal" else None),
            }
        )
    return out


def orm_body(stream_id: int) -> dict:
    stream = orm_stream_get(stream_id)
    return stream_body(stream=stream, pins=orm_streams_pins([stream])[stream.pk])


def rendered(body) -> bytes:
    """What the endpoint's renderer (DRF's JSONRenderer, the only one configured) makes of it."""
    return JSONRenderer().render(body)


# -- a stream with every case ----------------------------------------------------------------


@pytest.fixture
def busy_stream():
    """A live stream of a shop with a shipping fee: pins in an order that is not their ids'
    (two at one position), stock at several levels and one sold out, a pin with no stock row
    at the default location (but one at a venue), another SKU's stock at a venue too, a
    variant title and the product's, an image, a per-buyer limit, another currency; an open
    deal, an open deal above the list price, a closed (ended) deal, a scheduled deal, an
    open deal past its closing time the tick has not closed yet, and an open deal on a
    pinned SKU in another stream of the shop."""
    shop = CreatorFactory().shop
    shop.shipping_fee = Decimal("4.90")
    shop.save(update_fields=["shipping_fee"])
    now = timezone.now()
    stream = Stream.objects.create(
        shop=shop,
        title="Zoë's drop — “quoted”",
        description="Line one\nline two ✨",
        starts_at=now - timedelta(minutes=5),
        hls_url="https://media.example.test/live/9/index.m3u8",
        poster_url="https://media.example.test/poster.jpg",
    )
    other = Stream.objects.create(shop=shop, title="Other", starts_at=now - timedelta(minutes=5))
    skus = {
        "plenty": make_sku(shop, code="PLENTY", price="20.00", stock=1000),
        "soldout": make_sku(shop, code="SOLDOUT", price="9.99", stock=0),
        "last": make_sku(shop, code="LAST-ONE", price="0.50", stock=1, per_buyer_limit=1),
        "euro": make_sku(shop, code="EURO", price="15.00", stock=12, currency="EUR"),
        "ended": make_sku(shop, code="ENDED", price="30.00", stock=40),
        "later": make_sku(shop, code="LATER", price="30.00", stock=40),
        "stale": make_sku(shop, code="STALE", price="11.00", stock=6),
        "dear": make_sku(shop, code="DEAR", price="5.00", stock=8),
        "nolevel": make_sku(shop, code="NO-LEVEL", price="3.00", stock=5),
    }
    skus["euro"].title = "Small, red"
    skus["euro"].save(update_fields=["title"])
    skus["plenty"].product.image_url = "https://cdn.example.test/plenty.jpg"
    skus["plenty"].product.save(update_fields=["image_url"])
    order = ["euro", "plenty", "soldout", "nolevel", "last", "ended", "later", "stale", "dear"]
    for position, name in zip([3, 1, 1, 7, 2, 9, 4, 5, 6], order, strict=True):
        pin_add(stream=stream, sku=skus[name], position=position)
    pin_add(stream=other, sku=skus["soldout"])
    pin_add(stream=other, sku=skus["plenty"])
    venue = Location.objects.create(shop=shop, name="Pop-up", kind=Location.Kind.VENUE)
    StockLevel.objects.create(sku=skus["nolevel"], location=venue, available=77)
    StockLevel.objects.create(sku=skus["plenty"], location=venue, available=55)
    StockLevel.objects.filter(sku=skus["nolevel"], location__is_default=True).delete()

    def deal(sku, price, quantity, *, on=stream, opens_at=now - timedelta(minutes=1), hours=1, **kw):
        return FlashDeal.objects.create(
            stream=on,
            sku=sku,
            price=price,
            quantity=quantity,
            opens_at=opens_at,
            closes_at=opens_at + timedelta(hours=hours),
            **kw,
        )

    deal(skus["plenty"], "12.00", 5, per_buyer_limit=2)
    deal(skus["dear"], "25.00", 3)  # above the list price: charged as set (docs/pricing.md)
    ended = deal(skus["ended"], "10.00", 4)
    deal(skus["later"], "10.00", 4, opens_at=now + timedelta(hours=2))
    deal(skus["plenty"], "1.00", 2, on=other)
    stream_start(stream=stream, now=now)  # opens the deals due
    stream_start(stream=other, now=now)
    deal_close(deal=ended)
    # Opened, then past its closing time without the tick having closed it.
    stale = deal(skus["stale"], "2.00", 2, opens_at=now - timedelta(hours=2), hours=3)
    deal_open(deal=stale, now=now)
    FlashDeal.objects.filter(pk=stale.pk).update(
        opens_at=now - timedelta(hours=2), closes_at=now - timedelta(seconds=1)
    )
    return {"stream": stream, "other": other, "skus": skus}


def test_the_detail_answers_the_bytes_the_orm_reads_gave(busy_stream, django_assert_num_queries):
    stream = busy_stream["stream"]
    expected = orm_body(stream.pk)
    with django_assert_num_queries(3):  # the stream and shop, the pins, the open deals
        response = Client().get(f"/api/v1/streams/{stream.pk}/")
    assert response.status_code == 200
    assert response.content == rendered(expected)

    # The stream really has the cases it claims to have.
    pins = {p["sku"]: p for p in response.json()["pins"]}
    assert [p["sku"] for p in response.json()["pins"]] == [
        "PLENTY",
        "SOLDOUT",
        "LAST-ONE",
        "EURO",
        "LATER",
        "STALE",
        "DEAR",
        "NO-LEVEL",
        "ENDED",
    ]
    assert response.json()["shipping_fee"] == "4.90"
    # 1,000 less the 5 of this stream's deal and the 2 of the other stream's.
    assert pins["PLENTY"]["deal"]["price"] == "12.00" and pins["PLENTY"]["available"] == 993
    assert pins["PLENTY"]["image_url"] == "https://cdn.example.test/plenty.jpg"
    assert pins["SOLDOUT"]["available"] == 0 and pins["SOLDOUT"]["level"] is not None
    assert pins["LAST-ONE"]["available"] == 1 and pins["LAST-ONE"]["per_buyer_limit"] == 1
    assert pins["EURO"]["title"] == "Small, red" and pins["EURO"]["currency"] == "EUR"
    assert pins["SOLDOUT"]["title"] == "Product SOLDOUT"
    assert pins["DEAR"]["deal"]["price"] == "25.00"
    assert pins["ENDED"]["deal"] is None and pins["ENDED"]["available"] == 40
    assert pins["LATER"]["deal"] is None and pins["STALE"]["deal"] is None
    assert pins["NO-LEVEL"] == {
        "sku": "NO-LEVEL",
        "sku_id": busy_stream["skus"]["nolevel"].pk,
        "title": "Product NO-LEVEL",
        "image_url": "",
        "price": "3.00",
        "currency": "USD",
        "per_buyer_limit": None,
        "available": 0,
        "level": None,
        "version": 0,
        "deal": None,
    }


@pytest.mark.parametrize("status", ["scheduled", "live", "ended", "cancelled"])
def test_every_status_is_answered_to_anyone_as_before(busy_stream, status):
    """The detail is public whatever the stream's status (drafts, ended and cancelled drops
    included), for anonymous and signed-in viewers alike; an unknown id is a 404."""
    stream = busy_stream["stream"]
    if status == "scheduled":
        stream = Stream.objects.create(shop=stream.shop, title="Draft", starts_at=timezone.now() + timedelta(days=1))
        pin_add(stream=stream, sku=busy_stream["skus"]["plenty"])
    elif status == "ended":
        stream_end(stream=stream)
    elif status == "cancelled":
        stream = Stream.objects.create(
            shop=stream.shop, title="Called off", starts_at=timezone.now() + timedelta(days=1)
        )
        pin_add(stream=stream, sku=busy_stream["skus"]["euro"])
        stream_cancel(stream=stream)
    assert Stream.objects.get(pk=stream.pk).status == status
    expected = rendered(orm_body(stream.pk))
    signed_in = Client()
    signed_in.force_login(CreatorFactory())
    for client in (Client(), signed_in):
        response = client.get(f"/api/v1/streams/{stream.pk}/")
        assert response.status_code == 200
        assert response.content == expected
    response = Client().get(f"/api/v1/streams/{stream.pk + 1000}/")
    assert response.status_code == 404 and response.json()["code"] == "stream_not_found"


@pytest.mark.parametrize("pk", ["0", "9223372036854775807", "9223372036854775808", "99999999999999999999"])
def test_an_id_no_stream_can_have_is_a_404_as_before(pk):
    response = Client().get(f"/api/v1/streams/{pk}/")
    assert response.status_code == 404 and response.json()["code"] == "stream_not_found"


def test_the_list_and_the_snapshot_answer_what_the_orm_reads_gave(busy_stream):
    stream, other = busy_stream["stream"], busy_stream["other"]
    streams = streams_list()
    assert {s.pk for s in streams} >= {stream.pk, other.pk}
    pins = orm_streams_pins([orm_stream_get(s.pk) for s in streams])
    expected = [stream_body(stream=orm_stream_get(s.pk), pins=pins[s.pk]) for s in streams]
    assert Client().get("/api/v1/streams/").content == rendered(expected)

    snapshot = stream_snapshot(stream_id=stream.pk)
    assert snapshot["stream"] == orm_body(stream.pk)
    assert snapshot["pins"] == orm_body(stream.pk)["pins"]
    assert snapshot["stock"] == {p["sku"]: p["available"] for p in orm_body(stream.pk)["pins"]}


def test_open_deals_are_what_the_orm_selected(busy_stream):
    """``open_deals`` is also the pricing provider's (quotes and buys): the same instances,
    in the same order, for streams and SKUs, at any moment."""
    stream, other, skus = busy_stream["stream"], busy_stream["other"], busy_stream["skus"]
    now = timezone.now()

    def fields(deals):
        return [[getattr(d, f.attname) for f in FlashDeal._meta.concrete_fields] for d in deals]

    for kwargs in (
        {"stream_ids": [stream.pk]},
        {"stream_ids": [stream.pk, other.pk]},
        {"stream_ids": [stream.pk, other.pk], "sku_ids": [skus["plenty"].pk]},
        {"stream_ids": [stream.pk], "sku_ids": [skus["dear"].pk, skus["stale"].pk, skus["ended"].pk]},
        {"stream_ids": [stream.pk], "sku_ids": []},
        {"stream_ids": []},
        {"stream_ids": [stream.pk], "now": now - timedelta(minutes=5)},  # the stale one was still on
        {"stream_ids": [stream.pk], "now": now + timedelta(hours=2)},  # every deal past its time
    ):
        loaded = open_deals(**kwargs)
        assert fields(loaded) == fields(orm_open_deals(**kwargs)), kwargs
        assert all(d._state.adding is False for d in loaded)
    assert len(open_deals(stream_ids=[stream.pk])) == 2
    assert len(open_deals(stream_ids=[stream.pk], now=now - timedelta(minutes=5))) == 3
