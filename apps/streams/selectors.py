"""Reads of streams: the snapshot a viewer gets first, lists for the storefront."""

from __future__ import annotations

from functools import lru_cache

from django.utils import timezone

from apps.catalog.models import SKU, Location, Product, StockLevel
from apps.catalog.selectors import bundle_card, bundles_of_anchors, venue_levels
from apps.pricing.offers import Context, Line
from apps.pricing.policy import unit_price_now
from creatorcommerce.fields import iso_utc
from creatorcommerce.sql import names, row_by_pk, select_values

from .exceptions import StreamNotFound
from .models import FlashDeal, Pin, Stream
from .pricing import deal_offer, early_offers, open_deals


def stream_get(*, stream_id: int) -> Stream:
    """The stream with its shop: ``select_related("shop")`` in one prepared statement
    (``creatorcommerce.sql.row_by_pk``), as every poll and snapshot reads it."""
    stream = row_by_pk(Stream, stream_id, related=("shop",))
    if stream is None:
        raise StreamNotFound()
    return stream


def deal_body(deal: FlashDeal | None) -> dict | None:
    if deal is None:
        return None
    return {
        "id": deal.pk,
        "price": str(deal.price),
        "ends_at": iso_utc(deal.closes_at),
        "per_buyer_limit": deal.per_buyer_limit,
        "remaining": deal.remaining,
        "version": deal.version,
    }


def deal_row(deal: FlashDeal) -> dict:
    """A deal as the control room lists it (every status), and as ``deal.scheduled`` carries it."""
    return {
        "id": deal.pk,
        "sku": deal.sku.code,
        "sku_id": deal.sku_id,
        "location": deal.location_id,
        "price": str(deal.price),
        "quantity": deal.quantity,
        "per_buyer_limit": deal.per_buyer_limit,
        "status": deal.status,
        "opens_at": iso_utc(deal.opens_at),
        "closes_at": iso_utc(deal.closes_at),
    }


def stream_pins(*, stream: Stream) -> list[dict]:
    """The pins in order, each with its price, default-location stock and open deal."""
    return streams_pins(streams=[stream])[stream.pk]


# What ``streams_pins`` reads of a pin, its SKU and product, and the SKU's stock row at a
# default location, in the statement's column order (for the ORM's converters).
_PIN_FIELDS = (
    (Pin, "stream_id"),
    (SKU, "id"),
    (SKU, "code"),
    (SKU, "title"),
    (SKU, "price"),
    (SKU, "currency"),
    (SKU, "per_buyer_limit"),
    (Product, "title"),
    (Product, "image_url"),
    (StockLevel, "id"),
    (StockLevel, "available"),
    (StockLevel, "version"),
)


@lru_cache(maxsize=64)
def _pins_sql(streams: int, using: str = "default") -> tuple[str, tuple]:
    p, s, pr = names(Pin, using), names(SKU, using), names(Product, using)
    lv, loc = names(StockLevel, using), names(Location, using)
    in_streams = ", ".join(["%s"] * streams)
    # The pins in the model's order (position, id); a pin's stock row is its SKU's at a
    # default location (the lowest id if there were several, which the catalog never makes).
    # Identifiers from the models' meta; values (the streams, is_default) are parameters.
    sql = (
        f"SELECT p.{p.stream_id}, s.{s.id}, s.{s.code}, s.{s.title}, s.{s.price}, s.{s.currency}, "  # noqa: S608
        f"s.{s.per_buyer_limit}, pr.{pr.title}, pr.{pr.image_url}, l.{lv.id}, l.{lv.available}, l.{lv.version} "
        f"FROM {p.table} p JOIN {s.table} s ON s.{s.id} = p.{p.sku_id} "
        f"JOIN {pr.table} pr ON pr.{pr.id} = s.{s.product_id} "
        f"LEFT JOIN {lv.table} l ON l.{lv.sku_id} = s.{s.id} AND l.{lv.location_id} IN "
        f"(SELECT d.{loc.id} FROM {loc.table} d WHERE d.{loc.is_default} = %s) "
        f"WHERE p.{p.stream_id} IN ({in_streams}) ORDER BY p.{p.position}, p.{p.id}, l.{lv.id}"
    )
    return sql, tuple(model._meta.get_field(name) for model, name in _PIN_FIELDS)


def streams_pins(*, streams) -> dict[int, list[dict]]:
    """``stream_pins`` for several streams in two statements (the public list shows many).

    Hand-written (``_pins_sql``, ``open_deals``), not QuerySets: every poll of
    ``GET /api/v1/streams/<id>/`` and every socket's snapshot reads a stream's pins, and the
    ORM's query compiler was two thirds of a poll's CPU (docs/performance.md). What it
    answers is what the ORM's reads answered (tests/streams/test_detail_read.py)."""
    ids = [s.pk for s in streams]
    out: dict[int, list[dict]] = {pk: [] for pk in ids}
    if not ids:
        return out
    sql, fields = _pins_sql(len(ids))
    rows = select_values(sql, [True, *ids], fields)
    # The deal a pin shows is the one the pricing policy applies to one unit in that stream:
    # the same provider and policy a quote and the buy price with (docs/pricing.md).
    offers: dict[tuple[int, int], list] = {}
    deals = {}
    for deal in open_deals(stream_ids=ids):
        offers.setdefault((deal.stream_id, deal.sku_id), []).append(deal_offer(deal))
        deals[deal.pk] = deal
    seen = set()
    for row in rows:
        stream_id, sku_id, code, title, price, currency, limit, product_title, image_url, level, available, ver = row
        if (stream_id, sku_id) in seen:  # a second stock row at a default location: the first one counts
            continue
        seen.add((stream_id, sku_id))
        _, applied = unit_price_now(unit_price=price, sku_id=sku_id, offers=offers.get((stream_id, sku_id), []))
        out[stream_id].append(
            {
                "sku": code,
                "sku_id": sku_id,
                "title": title or product_title,  # SKU.display_title
                "image_url": image_url,
                "price": str(price),
                "currency": currency,
                "per_buyer_limit": limit,
                "available": available if level is not None else 0,
                "level": level,
                "version": ver if level is not None else 0,
                "deal": deal_body(deals[applied.id] if applied is not None and applied.source == "deal" else None),
            }
        )
    return out


def stream_body(*, stream: Stream, pins: list[dict] | None = None) -> dict:
    """``GET /api/v1/streams/{id}/`` (contract): the stream with its pins."""
    return {
        "id": stream.pk,
        "title": stream.title,
        "description": stream.description,
        "creator": stream.shop.name,
        "shop": stream.shop.slug,
        "status": stream.status,
        "starts_at": iso_utc(stream.starts_at),
        "hls_url": stream.hls_url or None,
        "poster_url": stream.poster_url or None,
        # What a delivered order pays on top of its lines (docs/pricing.md, "Shipping"), so
        # the buy button never charges more than the page shows.
        "shipping_fee": str(stream.shop.shipping_fee),
        "pins": stream_pins(stream=stream) if pins is None else pins,
    }


def stream_owner_body(*, stream: Stream) -> dict:
    """What the creators' API answers about a drop (docs/streams.md, "Creators' API for
    drops"): ``stream_body`` and the scheduling a calendar needs (``ends_at``,
    ``cancelled_at``, the feeds' ``uid`` and ``sequence``)."""
    return {
        **stream_body(stream=stream),
        "ends_at": iso_utc(stream.ends_at) if stream.ends_at else None,
        "cancelled_at": iso_utc(stream.cancelled_at) if stream.cancelled_at else None,
        "uid": str(stream.uid),
        "sequence": stream.sequence,
    }


def shop_skus_by_code(*, shop, codes) -> tuple[list[SKU], list[str]]:
    """The SKUs of ``shop`` with these codes, in the order given, and the codes it has none
    of."""
    found = {sku.code: sku for sku in SKU.objects.filter(shop=shop, code__in=list(codes))}
    return [found[code] for code in codes if code in found], [code for code in codes if code not in found]


def stream_pinned_skus(*, stream_id: int) -> list[dict]:
    """``[{"sku": code, "sku_id": id, "level": stock level id | None}]`` of a stream's pins:
    enough to join their groups and to tell the stock row viewers see (the default
    location's, as in ``stream_pins``) from the SKU's others."""
    if not Stream.objects.filter(pk=stream_id).exists():
        raise StreamNotFound()
    pinned = list(Pin.objects.filter(stream_id=stream_id).values_list("sku__code", "sku_id"))
    levels: dict[int, int] = {}
    for sku_id, level_id in StockLevel.objects.filter(
        sku_id__in=[pk for _, pk in pinned], location__is_default=True
    ).values_list("sku_id", "pk"):
        levels.setdefault(sku_id, level_id)
    return [{"sku": code, "sku_id": pk, "level": levels.get(pk)} for code, pk in pinned]


def stream_snapshot(*, stream_id: int) -> dict:
    """The first WebSocket message: pins and absolute stock, by SKU code; the pinned SKUs'
    stock rows at the shop's venues (``venue_stock``, with their versions: the feed turns
    them into ``venues``) and the active bundles anchored on a pinned SKU (``bundles``;
    docs/geofences.md); and ``shop_id`` for the consumer (not sent: it names the viewer's
    snapshot extras' shop, apps/streams/extras.py)."""
    stream = stream_get(stream_id=stream_id)
    pins = stream_pins(stream=stream)
    sku_ids = [p["sku_id"] for p in pins]
    return {
        "shop_id": stream.shop_id,
        "stream": stream_body(stream=stream, pins=pins),
        "pins": pins,
        "stock": {p["sku"]: p["available"] for p in pins},
        "venue_stock": venue_levels(sku_ids=sku_ids, shop_id=stream.shop_id),
        "bundles": [bundle_card(rule) for rule in bundles_of_anchors(sku_ids=sku_ids)],
    }


def streams_list(*, status: str | None = None, limit: int = 50):
    """The storefront's streams: live and upcoming (``status``: one of them). Ended and
    cancelled drops are not listed (docs/streams.md)."""
    qs = Stream.objects.select_related("shop")
    qs = qs.filter(status=status) if status else qs.filter(status__in=[Stream.Status.LIVE, Stream.Status.SCHEDULED])
    order = "-started_at" if status == Stream.Status.LIVE else "starts_at"
    return list(qs.order_by(order, "pk")[:limit])


RECENT_SALES = 30


def stream_sales(*, stream: Stream) -> dict:
    """For the control room: paid orders and revenue so far, per minute (``series``), and the
    latest ``RECENT_SALES`` orders in the shape of the socket's ``sale`` message
    (``recent``, newest first), so the page shows the sales made before it was opened."""
    from django.db.models import Count, Prefetch, Sum
    from django.db.models.functions import TruncMinute

    from apps.orders.models import Order, OrderLine

    paid = Order.objects.filter(stream=stream, status=Order.Status.PAID)
    series = (
        paid.annotate(minute=TruncMinute("paid_at"))
        .values("minute")
        .annotate(orders=Count("id"), revenue=Sum("total"))
        .order_by("minute")
    )
    totals = paid.aggregate(orders=Count("id"), revenue=Sum("total"))
    recent = paid.order_by("-created_at", "-pk").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("pk").only("order_id", "sku_code", "quantity"))
    )[:RECENT_SALES]
    return {
        "orders": totals["orders"] or 0,
        "revenue": str(totals["revenue"] or 0),
        "currency": stream.shop.currency,
        "series": [
            {
                "minute": iso_utc(row["minute"]),
                "orders": row["orders"],
                "revenue": str(row["revenue"]),
            }
            for row in series
            if row["minute"]
        ],
        "recent": [
            {
                "order": order.pk,
                "total": str(order.total),
                "currency": order.currency,
                "lines": [{"sku": line.sku_code, "quantity": line.quantity} for line in order.lines.all()],
                "at": iso_utc(order.created_at),
            }
            for order in recent
        ],
    }


def early_deals(*, stream: Stream, buyer, now=None) -> list[dict]:
    """The deals of ``stream``'s pins that ``buyer`` may buy early right now (their early
    access, docs/pricing.md, "Early access"): what their pins show them instead of the list
    price, priced by the same provider a quote and the buy use. Empty for anyone without
    early access, or once the deal has opened (the pin's own ``deal`` then)."""
    pins = Pin.objects.filter(stream=stream).select_related("sku").order_by("position", "pk")
    lines = [Line(p.sku_id, p.sku.code, 1, p.sku.price, p.sku.shop_id) for p in pins]
    now = now or timezone.now()
    offers = early_offers(buyer=buyer, lines=lines, context=Context(stream=stream.pk, now=now), now=now)
    if not offers:
        return []
    deals = FlashDeal.objects.in_bulk([o.id for o in offers])
    codes = {line.sku_id: line.code for line in lines}
    return [
        {
            "sku": codes[offer.sku_id],
            "id": offer.id,
            "label": offer.label,
            "price": str(offer.value),
            "opens_at": iso_utc(deals[offer.id].opens_at),
            "ends_at": iso_utc(deals[offer.id].closes_at),
            "units_left": min(offer.units_left, offer.stock_left or 0),
            "per_buyer_limit": offer.per_buyer_limit,
        }
        for offer in offers
    ]
