"""The streams app's demo step: a live stream with the demo products pinned and a flash deal
on the poster, open for the next two hours (a fresh deal is opened when the last one has
ended). Everything through the streams services, so each write is an event as in real use."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.catalog.models import SKU

from .models import FlashDeal, Stream
from .services import deal_open, deal_schedule, pin_add, stream_create, stream_start

DEMO_STREAM_TITLE = "Friday night drop"
DEMO_PINS = ["TEE-S", "TEE-M", "TEE-L", "POSTER", "STICKERS"]


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
    return {
        "stream": stream,
        "summary": [
            f"live stream {stream.title!r}: /streams/{stream.pk}/ (control room: /streams/{stream.pk}/control/)"
        ],
    }
