"""The streams app's demo step: a live stream with the demo products pinned, a flash deal
on the poster, open for the next two hours (a fresh deal is opened when the last one has
ended), and a second deal on the large tee scheduled to open 25 minutes after seeding, so a
holder of an early-access perk (docs/loyalty.md, the demo's "Insider") can buy it before
everyone else (a fresh one is scheduled when none is waiting). Everything through the
streams services, so each write is an event as in real use."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.catalog.models import SKU

from .models import FlashDeal, Stream
from .services import deal_open, deal_schedule, pin_add, stream_create, stream_start

DEMO_STREAM_TITLE = "Friday night drop"
DEMO_PINS = ["TEE-S", "TEE-M", "TEE-L", "POSTER", "STICKERS"]
# The deal that opens later (docs/pricing.md, "Early access"): within the 30 minutes of the
# demo's early-access perk when the demo starts.
LATER_DEAL_SKU = "TEE-L"
LATER_DEAL_OPENS_IN = timedelta(minutes=25)


def seed(context: dict) -> dict:
    shop = context["users"]["creator"].shop
    now = timezone.now()
    stream = (
        Stream.objects.filter(shop=shop, title=DEMO_STREAM_TITLE)
        .filter(status__in=[Stream.Status.SCHEDULED, Stream.Status.LIVE])
        .first()
    )
    if stream is None:
        stream = stream_create(
            shop=shop,
            title=DEMO_STREAM_TITLE,
            starts_at=now,
            description="Tonight's tee drop, signed posters and a flash deal.",
        )
    if stream.status == Stream.Status.SCHEDULED:
        stream = stream_start(stream=stream, now=now)
    for position, code in enumerate(DEMO_PINS, start=1):
        pin_add(stream=stream, sku=SKU.objects.get(shop=shop, code=code), position=position)
    if not FlashDeal.objects.filter(stream=stream, status=FlashDeal.Status.OPEN).exists():
        deal = deal_schedule(
            stream=stream,
            sku=SKU.objects.get(shop=shop, code="POSTER"),
            price="35.00",
            quantity=10,
            per_buyer_limit=1,
            opens_at=now,
            closes_at=now + timedelta(hours=2),
        )
        deal_open(deal=deal, now=now)
    later = FlashDeal.objects.filter(stream=stream, status=FlashDeal.Status.SCHEDULED, opens_at__gt=now).first()
    if later is None:
        opens_at = (now + LATER_DEAL_OPENS_IN).replace(second=0, microsecond=0)
        later = deal_schedule(
            stream=stream,
            sku=SKU.objects.get(shop=shop, code=LATER_DEAL_SKU),
            price="19.00",
            quantity=10,
            per_buyer_limit=1,
            opens_at=opens_at,
            closes_at=opens_at + timedelta(hours=1),
        )
    return {
        "stream": stream,
        "summary": [
            f"live stream {stream.title!r}: /streams/{stream.pk}/ (control room: /streams/{stream.pk}/control/); "
            f"a flash deal on {LATER_DEAL_SKU} opens at {later.opens_at:%H:%M} UTC (early-access perk holders: 30 "
            "minutes before)"
        ],
    }
