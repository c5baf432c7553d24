"""Writes to streams: going live, pins, flash deals, presence; and the scheduler's tick.

Every change emits its event through the spine; viewers' and control rooms' sockets get
nothing any other way.
"""

from __future__ import annotations

import logging
from typing import NamedTuple, NoReturn

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from apps.catalog.exceptions import InsufficientStock
from apps.catalog.models import SKU, StockLevel
from apps.catalog.services import location_default, stock_changed_emit, stock_return, stock_take
from creatorcommerce.spine.events import emit

from .exceptions import DealNotOpen, InvalidStreamTransition, SkuNotInShop
from .models import FlashDeal, Pin, Stream
from .selectors import deal_body, stream_pins

log = logging.getLogger(__name__)


def stream_groups(stream_id: int) -> list[str]:
    """Viewers and the control room of a stream listen here."""
    return [f"stream.{stream_id}"]


def control_groups(stream_id: int) -> list[str]:
    """Only the control room (creator and staff) listens here."""
    return [f"control.{stream_id}"]


# -- stream lifecycle ------------------------------------------------------------------------


@transaction.atomic
def stream_start(*, stream: Stream, now=None) -> Stream:
    """scheduled -> live; opens deals whose time has come."""
    now = now or timezone.now()
    locked = Stream.objects.select_for_update().get(pk=stream.pk)
    if locked.status == Stream.Status.LIVE:
        return locked
    if locked.status != Stream.Status.SCHEDULED:
        raise InvalidStreamTransition()
    locked.status, locked.started_at = Stream.Status.LIVE, now
    locked.save(update_fields=["status", "started_at"])
    emit(
        "stream.started",
        {"stream": locked.pk, "shop": locked.shop_id, "status": locked.status},
        groups=[*stream_groups(locked.pk), f"shop.{locked.shop_id}"],
    )
    for deal in FlashDeal.objects.filter(stream=locked, status=FlashDeal.Status.SCHEDULED, opens_at__lte=now):
        deal_open(deal=deal, now=now)
    return locked


@transaction.atomic
def stream_end(*, stream: Stream, now=None) -> Stream:
    """live (or scheduled) -> ended; closes its open deals, giving their stock back."""
    now = now or timezone.now()
    locked = Stream.objects.select_for_update().get(pk=stream.pk)
    if locked.status == Stream.Status.ENDED:
        return locked
    for deal in FlashDeal.objects.filter(stream=locked, status=FlashDeal.Status.OPEN):
        deal_close(deal=deal, now=now)
    FlashDeal.objects.filter(stream=locked, status=FlashDeal.Status.SCHEDULED).update(status=FlashDeal.Status.CLOSED)
    locked.status, locked.ended_at = Stream.Status.ENDED, now
    locked.save(update_fields=["status", "ended_at"])
    emit(
        "stream.ended",
        {"stream": locked.pk, "shop": locked.shop_id, "status": locked.status},
        groups=[*stream_groups(locked.pk), f"shop.{locked.shop_id}"],
    )
    return locked


# -- pins --------------------------------------------------------------------------------------


def _pins_changed(stream: Stream) -> None:
    emit("pins.changed", {"stream": stream.pk, "pins": stream_pins(stream=stream)}, groups=stream_groups(stream.pk))


@transaction.atomic
def pin_add(*, stream: Stream, sku: SKU, position: int | None = None) -> Pin:
    """Pin a SKU of the stream's shop (again: no-op); emits ``pins.changed`` with the list."""
    if sku.shop_id != stream.shop_id:
        raise SkuNotInShop()
    Stream.objects.select_for_update().filter(pk=stream.pk).first()  # serialise pin edits per stream
    if position is None:
        position = (Pin.objects.filter(stream=stream).aggregate(m=Max("position"))["m"] or 0) + 1
    pin, created = Pin.objects.get_or_create(stream=stream, sku=sku, defaults={"position": position})
    if created:
        location_default(shop=stream.shop)
        StockLevel.objects.get_or_create(sku=sku, location=location_default(shop=stream.shop))
        _pins_changed(stream)
    return pin


@transaction.atomic
def pin_remove(*, stream: Stream, sku: SKU) -> bool:
    Stream.objects.select_for_update().filter(pk=stream.pk).first()
    deleted, _ = Pin.objects.filter(stream=stream, sku=sku).delete()
    if deleted:
        _pins_changed(stream)
    return bool(deleted)


# -- flash deals -------------------------------------------------------------------------------


class DealCount(NamedTuple):
    deal_id: int
    remaining: int
    version: int


def deal_event(*, deal: FlashDeal, kind: str) -> tuple[str, dict, list]:
    """``deal.opened``, ``deal.changed`` or ``deal.closed`` with the deal's absolute state."""
    body = deal_body(deal) if deal.status == FlashDeal.Status.OPEN else None
    payload = {
        "stream": deal.stream_id,
        "sku": deal.sku.code,
        "sku_id": deal.sku_id,
        "deal_id": deal.pk,
        "version": deal.version,
        "remaining": deal.remaining,
        "deal": body,
    }
    return f"deal.{kind}", payload, stream_groups(deal.stream_id)


@transaction.atomic
def deal_open(*, deal: FlashDeal, now=None) -> FlashDeal:
    """Set the deal's units aside out of its location's stock and open it.

    If the location holds fewer units than planned, the deal opens with what there is.
    """
    now = now or timezone.now()
    deal = FlashDeal.objects.select_for_update().select_related("sku", "stream").get(pk=deal.pk)
    if deal.status != FlashDeal.Status.SCHEDULED:
        return deal
    if FlashDeal.objects.filter(stream_id=deal.stream_id, sku_id=deal.sku_id, status=FlashDeal.Status.OPEN).exists():
        return deal  # one open deal per SKU and stream: this one waits for the other to close
    if deal.closes_at <= now:
        deal.status = FlashDeal.Status.CLOSED
        deal.save(update_fields=["status"])
        return deal
    location = deal.location or location_default(shop=deal.stream.shop)
    level, _ = StockLevel.objects.get_or_create(sku=deal.sku, location=location)
    level = StockLevel.objects.select_for_update().get(pk=level.pk)
    allocated = min(deal.quantity, level.available)
    if allocated:
        count = stock_take(level_id=level.pk, quantity=allocated)
        stock_changed_emit(sku_id=deal.sku_id, sku_code=deal.sku.code, shop_id=deal.stream.shop_id, level=count)
    deal.location = location
    deal.remaining, deal.status = allocated, FlashDeal.Status.OPEN
    deal.version += 1
    deal.save(update_fields=["location", "remaining", "status", "version"])
    event_type, payload, groups = deal_event(deal=deal, kind="opened")
    emit(event_type, payload, groups=groups)
    return deal


@transaction.atomic
def deal_close(*, deal: FlashDeal, now=None) -> FlashDeal:
    """Close the deal and give its unsold units back to the location."""
    deal = FlashDeal.objects.select_for_update().select_related("sku", "stream").get(pk=deal.pk)
    if deal.status == FlashDeal.Status.CLOSED:
        return deal
    was_open = deal.status == FlashDeal.Status.OPEN
    left = deal.remaining
    deal.status, deal.remaining = FlashDeal.Status.CLOSED, 0
    deal.version += 1
    deal.save(update_fields=["status", "remaining", "version"])
    if was_open:
        if left:
            level = StockLevel.objects.get(sku=deal.sku, location=deal.location)
            count = stock_return(level_id=level.pk, quantity=left)
            stock_changed_emit(sku_id=deal.sku_id, sku_code=deal.sku.code, shop_id=deal.stream.shop_id, level=count)
        event_type, payload, groups = deal_event(deal=deal, kind="closed")
        emit(event_type, payload, groups=groups)
    return deal


@transaction.atomic
def deal_close_at_set(*, deal: FlashDeal, closes_at) -> FlashDeal:
    """Move an open (or scheduled) deal's end; viewers' countdowns follow (``deal.changed``)."""
    deal = FlashDeal.objects.select_for_update().select_related("sku").get(pk=deal.pk)
    if deal.status == FlashDeal.Status.CLOSED or closes_at <= deal.opens_at:
        raise DealNotOpen("A closed deal cannot be moved, and a deal cannot close before it opens.")
    deal.closes_at = closes_at
    deal.version += 1
    deal.save(update_fields=["closes_at", "version"])
    if deal.status == FlashDeal.Status.OPEN:
        event_type, payload, groups = deal_event(deal=deal, kind="changed")
        emit(event_type, payload, groups=groups)
    return deal


def deal_take(*, deal_id: int, quantity: int, now=None) -> DealCount:
    """Take ``quantity`` units of an open deal, in one conditional UPDATE (the deal must be
    open and not past its closing time). Precondition: inside ``transaction.atomic()``."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(*deal_take_statement(deal_id=deal_id, quantity=quantity, now=now))
        row = cursor.fetchone()
    if row is None:
        deal_take_refused(deal_id=deal_id, now=now)
    return DealCount(deal_id, row[0], row[1])


def deal_take_statement(*, deal_id: int, quantity: int, now) -> tuple[str, list]:
    """``deal_take``'s conditional UPDATE (SQL and parameters), also run inside the buy's
    single-statement reserve: it returns ``available, version`` (the deal's remaining
    units), or no row when refused."""
    return (
        "UPDATE streams_flashdeal SET remaining = remaining - %s, version = version + 1 "
        "WHERE id = %s AND status = 'open' AND closes_at > %s AND remaining >= %s "
        "RETURNING remaining AS available, version",
        [quantity, deal_id, now, quantity],
    )


def deal_take_refused(*, deal_id: int, now) -> NoReturn:
    """Why a deal refused a take: DealNotOpen (closed, past its time, or gone), else
    InsufficientStock."""
    status = FlashDeal.objects.filter(pk=deal_id).values_list("status", "closes_at").first()
    if status is None or status[0] != FlashDeal.Status.OPEN or status[1] <= now:
        raise DealNotOpen()
    raise InsufficientStock()


def deal_return(*, deal_id: int, quantity: int):
    """Give units of a released order back: to the deal while it is open, else to the
    location its units came from (the deal already returned the rest when it closed).
    Precondition: inside ``transaction.atomic()``. Returns the DealCount or StockCount."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE streams_flashdeal SET remaining = remaining + %s, version = version + 1 "
            "WHERE id = %s AND status = 'open' RETURNING remaining, version",
            [quantity, deal_id],
        )
        row = cursor.fetchone()
    if row is not None:
        return DealCount(deal_id, row[0], row[1])
    deal = FlashDeal.objects.get(pk=deal_id)
    level = StockLevel.objects.get(sku_id=deal.sku_id, location_id=deal.location_id)
    return stock_return(level_id=level.pk, quantity=quantity)


def deal_changed_event(*, deal_id: int, count: DealCount) -> tuple[str, dict, list]:
    deal = FlashDeal.objects.select_related("sku").get(pk=deal_id)
    deal.remaining, deal.version = count.remaining, count.version
    return deal_event(deal=deal, kind="changed")


# -- presence ----------------------------------------------------------------------------------


def _presence_key(stream_id: int) -> str:
    return f"streams:presence:{stream_id}"


def presence_join(*, stream_id: int) -> None:
    """A viewer socket opened (counted in the shared cache, so across web processes)."""
    try:
        cache.incr(_presence_key(stream_id))
    except ValueError:
        cache.add(_presence_key(stream_id), 0, None)
        cache.incr(_presence_key(stream_id))


def presence_leave(*, stream_id: int) -> None:
    try:
        if cache.decr(_presence_key(stream_id)) < 0:
            cache.set(_presence_key(stream_id), 0, None)
    except ValueError:
        pass


def presence_count(*, stream_id: int) -> int:
    return max(int(cache.get(_presence_key(stream_id)) or 0), 0)


def presence_publish(*, stream_ids=None) -> int:
    """Emit ``presence.counted`` for live streams whose viewer count changed since the last
    call (beat runs this every second). Returns how many streams were announced."""
    sent = 0
    ids = stream_ids or Stream.objects.filter(status=Stream.Status.LIVE).values_list("pk", flat=True)
    for stream_id in ids:
        viewers = presence_count(stream_id=stream_id)
        last_key = f"{_presence_key(stream_id)}:announced"
        if cache.get(last_key) == viewers:
            continue
        with transaction.atomic():
            emit("presence.counted", {"stream": stream_id, "viewers": viewers}, groups=stream_groups(stream_id))
        cache.set(last_key, viewers, 3600)
        sent += 1
    return sent


# -- the scheduler -----------------------------------------------------------------------------


def streams_tick(*, now=None) -> dict:
    """Start, end, open and close whatever is due. Beat runs it every second; each step is
    its own transaction and idempotent, so overlapping ticks are harmless, and one broken
    stream or deal is logged and skipped rather than stopping every other shop's drop."""
    now = now or timezone.now()
    done = {"started": 0, "ended": 0, "opened": 0, "closed": 0, "failed": 0}

    def attempt(kind: str, fn, **kwargs) -> None:
        try:
            fn(now=now, **kwargs)
            done[kind] += 1
        except Exception:
            log.exception("streams tick: %s failed for %s", kind, kwargs)
            done["failed"] += 1

    for stream in Stream.objects.filter(status=Stream.Status.SCHEDULED, starts_at__lte=now):
        if stream.ends_at is None or stream.ends_at > now:
            attempt("started", stream_start, stream=stream)
    for stream in Stream.objects.filter(status__in=[Stream.Status.LIVE, Stream.Status.SCHEDULED], ends_at__lte=now):
        attempt("ended", stream_end, stream=stream)
    for deal in FlashDeal.objects.filter(status=FlashDeal.Status.OPEN, closes_at__lte=now):
        attempt("closed", deal_close, deal=deal)
    for deal in FlashDeal.objects.filter(
        status=FlashDeal.Status.SCHEDULED, opens_at__lte=now, stream__status=Stream.Status.LIVE
    ):
        attempt("opened", deal_open, deal=deal)
    return done
