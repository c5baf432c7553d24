"""Flash deals as offers: the streams app's pricing provider (docs/pricing.md).

Registered from ``StreamsConfig.ready``. A deal is an offer on one SKU in one stream while
it is open and before its closing time (the buy's own condition): its price replaces the
list price, its units are the line's (taken and given back by ``units.DealUnits``), and its
per-buyer limit (if any) counts under ``deal:<id>``.
"""

from __future__ import annotations

from django.utils import timezone

from apps.pricing.offers import Context, Kind, Offer
from apps.pricing.registry import context_shop, offer_provider
from creatorcommerce.sql import names

from .exceptions import StreamNotFound
from .models import FlashDeal, Stream


def open_deals(*, stream_ids, sku_ids=None, now=None) -> list[FlashDeal]:
    """The deals in effect now in these streams (on these SKUs): open, and not past their
    closing time even if the tick has not closed them yet."""
    qs = FlashDeal.objects.filter(
        stream_id__in=stream_ids, status=FlashDeal.Status.OPEN, closes_at__gt=now or timezone.now()
    )
    if sku_ids is not None:
        qs = qs.filter(sku_id__in=sku_ids)
    return list(qs)


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
    )


@offer_provider("deal")
def deal_offers(*, buyer, lines, context: Context) -> list[Offer]:
    if context.stream is None:
        return []
    return [deal_offer(d) for d in open_deals(stream_ids=[context.stream], sku_ids=[ln.sku_id for ln in lines])]


def _stream_shop_sql(placeholder: str) -> str:
    n = names(Stream)
    return f"SELECT {n.shop_id} FROM {n.table} WHERE {n.id} = {placeholder}"  # noqa: S608 - names from meta


@context_shop("stream", sql=_stream_shop_sql)
def stream_shop(stream_id: int) -> int:
    shop_id = Stream.objects.filter(pk=stream_id).values_list("shop_id", flat=True).first()
    if shop_id is None:
        raise StreamNotFound()
    return shop_id
