"""Flash deals as offers: the streams app's pricing provider (docs/pricing.md).

Registered from ``StreamsConfig.ready``. A deal is an offer on one SKU in one stream while
it is open and before its closing time (the buy's own condition): its price replaces the
list price, its units are the line's (taken and given back by ``units.DealUnits``), and its
per-buyer limit (if any) counts under ``deal:<id>``. A buyer with early access (a loyalty
perk) is also offered the deals that open within it (``early_offers``).
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from django.db.models import Q
from django.utils import timezone

from apps.catalog.models import StockLevel
from apps.pricing.offers import Context, Kind, Offer
from apps.pricing.registry import context_shop, early_access_for, offer_provider
from creatorcommerce.sql import names, prep_value, rows_matching

from .exceptions import StreamNotFound
from .models import FlashDeal, Stream

# The units source of a deal sold early (apps.streams.units.DealEarlyUnits).
DEAL_EARLY = "deal_early"


@lru_cache(maxsize=64)
def _open_deals_where(streams: int, skus: int | None) -> str:
    n = names(FlashDeal)
    in_streams = ", ".join(["%s"] * streams)
    where = f"{n.stream_id} IN ({in_streams}) AND {n.status} = %s AND {n.closes_at} > %s"
    if skus is not None:
        where += f" AND {n.sku_id} IN ({', '.join(['%s'] * skus)})"
    # The model's ordering (then the key, for ties); names from meta, values parameters.
    return where + f" ORDER BY {n.opens_at}, {n.id}"


def open_deals(*, stream_ids, sku_ids=None, now=None) -> list[FlashDeal]:
    """The deals in effect now in these streams (on these SKUs): open, and not past their
    closing time even if the tick has not closed them yet. A hand-written statement, built
    once per number of streams and SKUs (``creatorcommerce.sql.rows_matching``): every poll
    of a stream and every snapshot reads them (docs/performance.md)."""
    stream_ids = [int(pk) for pk in stream_ids]
    sku_ids = None if sku_ids is None else [int(pk) for pk in sku_ids]
    if not stream_ids or sku_ids == []:
        return []
    closes_at = prep_value(FlashDeal, "closes_at", now or timezone.now())
    params = [*stream_ids, FlashDeal.Status.OPEN.value, closes_at, *(sku_ids or ())]
    where = _open_deals_where(len(stream_ids), None if sku_ids is None else len(sku_ids))
    return rows_matching(FlashDeal, where, params)


def deal_offer(deal: FlashDeal) -> Offer:
    return Offer(
        source="deal",
        id=deal.pk,
        label="Flash deal",
        kind=Kind.PRICE,
        value=deal.price,
        sku_id=deal.sku_id,
        units_left=deal.remaining,
        per_buyer_limit=deal.per_buyer_limit,
        allowance_key=f"deal:{deal.pk}",
        ends_at=deal.closes_at,
    )


@offer_provider("deal")
def deal_offers(*, buyer, lines, context: Context) -> list[Offer]:
    if context.stream is None or not lines:
        return []
    now = context.now or timezone.now()
    offers = [deal_offer(d) for d in open_deals(stream_ids=[context.stream], sku_ids=[ln.sku_id for ln in lines])]
    priced = {o.sku_id for o in offers}
    return offers + early_offers(
        buyer=buyer, lines=[ln for ln in lines if ln.sku_id not in priced], context=context, now=now
    )


def early_offers(*, buyer, lines, context: Context, now) -> list[Offer]:
    """Deals of the stream opening within the buyer's early access (an ``early_access`` perk,
    ``registry.early_access_for``), on lines no open deal prices, offered to them before the
    public: the deal's price, its units counted on the deal (``deal_early``) and taken off
    the shelf at its location, and the access used once (docs/pricing.md, "Early access").
    A buyer without early access costs nothing here (the access source answers from the
    buy's read)."""
    if not lines:
        return []
    access = early_access_for(buyer=buyer, shop_id=lines[0].shop_id, context=context)
    if access is None:
        return []
    deals = (
        FlashDeal.objects.filter(
            stream_id=context.stream,
            sku_id__in=[ln.sku_id for ln in lines],
            status=FlashDeal.Status.SCHEDULED,
            opens_at__gt=now,
            opens_at__lte=now + timedelta(minutes=access.minutes),
            closes_at__gt=now,
        )
        .select_related("stream")
        .order_by("opens_at", "pk")
    )
    offers, seen = [], set()
    for deal in deals:
        if deal.sku_id in seen:  # the first to open, of several on one SKU
            continue
        seen.add(deal.sku_id)
        # The shelf at the deal's location (empty: the shop's default location).
        at = (
            Q(location_id=deal.location_id)
            if deal.location_id
            else Q(location__shop_id=deal.stream.shop_id, location__is_default=True)
        )
        shelf = StockLevel.objects.filter(at, sku_id=deal.sku_id).values("pk", "available").first()
        if shelf is None:
            continue
        offers.append(
            Offer(
                source="deal",
                id=deal.pk,
                label=f"Flash deal, early ({access.label})",
                kind=Kind.PRICE,
                value=deal.price,
                sku_id=deal.sku_id,
                units_left=deal.quantity - deal.early_sold,
                per_buyer_limit=deal.per_buyer_limit,
                allowance_key=f"deal:{deal.pk}",
                redeem=access.redeem,
                units_source=DEAL_EARLY,
                stock_row=shelf["pk"],
                stock_left=shelf["available"],
            )
        )
    return offers


def _stream_shop_sql(placeholder: str) -> str:
    n = names(Stream)
    return f"SELECT {n.shop_id} FROM {n.table} WHERE {n.id} = {placeholder}"  # noqa: S608 - names from meta


@context_shop("stream", sql=_stream_shop_sql)
def stream_shop(stream_id: int) -> int:
    shop_id = Stream.objects.filter(pk=stream_id).values_list("shop_id", flat=True).first()
    if shop_id is None:
        raise StreamNotFound()
    return shop_id
