"""Writes to streams: scheduling, editing and cancelling drops, going live, pins, flash
deals, presence; and the scheduler's tick.

Every change emits its event through the spine; viewers' and control rooms' sockets get
nothing any other way.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from datetime import timedelta
from typing import NamedTuple, NoReturn

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from apps.catalog.exceptions import InsufficientStock
from apps.catalog.models import SKU, StockLevel
from apps.catalog.services import location_default, stock_changed_emit, stock_return, stock_take
from apps.orders.selectors import unit_sources_with_orders
from creatorcommerce.errors import DomainError
from creatorcommerce.fields import iso_utc
from creatorcommerce.process import PerProcess
from creatorcommerce.spine.events import emit
from creatorcommerce.sql import after_gate, names

from .exceptions import (
    AnotherDealOpen,
    DealHasOrders,
    DealIsOpen,
    DealNotFound,
    DealNotOpen,
    InvalidStreamTimes,
    InvalidStreamTitle,
    InvalidStreamTransition,
    LocationNotInShop,
    SkuNotInShop,
    StreamHasOpenDeal,
    StreamHasOrders,
    StreamIsCancelled,
    StreamIsEnded,
    StreamIsLive,
)
from .models import Annotation, FlashDeal, Pin, Stream
from .pricing import DEAL_EARLY
from .selectors import deal_body, deal_row, stream_pins

log = logging.getLogger(__name__)


def stream_groups(stream_id: int) -> list[str]:
    """Viewers and the control room of a stream listen here."""
    return [f"stream.{stream_id}"]


def control_groups(stream_id: int) -> list[str]:
    """Only the control room (creator and staff) listens here."""
    return [f"control.{stream_id}"]


def shop_control_groups(shop_id: int) -> list[str]:
    """Every open control room of the shop's streams listens here: for events of apps above
    streams about the shop's things that are no one stream's (a device going offline), relayed
    by ``apps.streams.panels.control_relay``. Viewers never join it."""
    return [f"control.shop.{shop_id}"]


# -- stream lifecycle ------------------------------------------------------------------------


STREAM_FIELDS = ("title", "description", "starts_at", "ends_at", "hls_url", "poster_url", "ingest_token")

# What a calendar shows of a drop (docs/streams.md, "Creators' API for drops"): a change of
# one of these (or cancelling) raises the stream's ``sequence``, the feeds' SEQUENCE.
SEQUENCED_FIELDS = ("title", "starts_at", "ends_at")

# How far ahead a drop may be scheduled: far enough for any real plan, near enough that no
# reminder or feed arithmetic on its times leaves the calendar's range.
SCHEDULE_HORIZON = timedelta(days=366 * 5)


def _stream_event(event_type: str, stream: Stream, changed=None) -> None:
    payload = {
        "stream": stream.pk,
        "shop": stream.shop_id,
        "status": stream.status,
        "title": stream.title,
        "starts_at": iso_utc(stream.starts_at),
        "ends_at": iso_utc(stream.ends_at) if stream.ends_at else None,
        "sequence": stream.sequence,
    }
    if changed is not None:
        payload["changed"] = list(changed)
    emit(event_type, payload, groups=[*control_groups(stream.pk), f"shop.{stream.shop_id}"])


def stream_problems(*, stream: Stream | None, changes: dict, now=None) -> list[tuple[str | None, DomainError]]:
    """What ``stream_create`` (``stream`` None) or ``stream_update`` would refuse of
    ``changes`` (field -> new value, only what changes), as ``(field or None, error)``: the
    services raise the first, the admin's form shows each on its field. The rules
    (docs/streams.md, "Creators' API for drops"): a cancelled drop changes no more
    (``stream_cancelled``); a live or ended drop's start does not move, nor an ended drop's
    end (``stream_live``, ``stream_ended``); a drop ends after it starts, a new end is not in
    the past and no time is more than SCHEDULE_HORIZON ahead (``invalid_times``); a title is
    not blank (``invalid_title``)."""
    now = now or timezone.now()
    problems: list[tuple[str | None, DomainError]] = []
    status = stream.status if stream is not None else Stream.Status.SCHEDULED
    if status == Stream.Status.CANCELLED and changes:
        return [(None, StreamIsCancelled())]
    if "starts_at" in changes and status != Stream.Status.SCHEDULED:
        error = StreamIsLive if status == Stream.Status.LIVE else StreamIsEnded
        problems.append(("starts_at", error()))
    if "ends_at" in changes and status == Stream.Status.ENDED:
        problems.append(("ends_at", StreamIsEnded()))
    if "title" in changes and not (changes["title"] or "").strip():
        problems.append(("title", InvalidStreamTitle()))
    starts_at = changes["starts_at"] if "starts_at" in changes else getattr(stream, "starts_at", None)
    ends_at = changes["ends_at"] if "ends_at" in changes else getattr(stream, "ends_at", None)
    for name in ("starts_at", "ends_at"):
        value = changes.get(name)
        if value is not None and value > now + SCHEDULE_HORIZON:
            problems.append((name, InvalidStreamTimes("A drop is scheduled at most five years ahead.")))
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        problems.append(("ends_at", InvalidStreamTimes("A drop must end after it starts.")))
    elif changes.get("ends_at") is not None and changes["ends_at"] <= now:
        problems.append(("ends_at", InvalidStreamTimes("A drop's new end cannot be in the past.")))
    return problems


def _refuse(problems) -> None:
    if problems:
        raise problems[0][1]


@transaction.atomic
def stream_create(*, shop, title: str, starts_at, pins=(), now=None, **fields) -> Stream:
    """A new drop of ``shop``, scheduled (``fields``: any of STREAM_FIELDS), with ``pins``
    (SKUs of the shop, shown in that order). Emits ``stream.scheduled``, then one
    ``pins.changed`` when it pins anything. Refuses what ``stream_problems`` finds
    (``invalid_times``, ``invalid_title``) and a SKU of another shop (``sku_not_in_shop``),
    writing nothing. A start in the past starts the drop at the scheduler's next tick."""
    unknown = set(fields) - set(STREAM_FIELDS)
    if unknown:
        raise TypeError(f"not a stream field: {', '.join(sorted(unknown))}")
    _refuse(stream_problems(stream=None, changes={"title": title, "starts_at": starts_at, **fields}, now=now))
    pins = list(dict.fromkeys(pins))
    if any(sku.shop_id != shop.pk for sku in pins):
        raise SkuNotInShop()
    stream = Stream.objects.create(shop=shop, title=title, starts_at=starts_at, **fields)
    _stream_event("stream.scheduled", stream)
    if pins:
        location = location_default(shop=shop)
        for position, sku in enumerate(pins, start=1):
            Pin.objects.create(stream=stream, sku=sku, position=position)
            StockLevel.objects.get_or_create(sku=sku, location=location)
        _pins_changed(stream)
    return stream


@transaction.atomic
def stream_update(*, stream: Stream, changes: dict, now=None) -> Stream:
    """Set ``changes`` (field -> value, of STREAM_FIELDS, and ``shop`` for staff) on the
    stream, re-read under its lock, with an UPDATE of the columns whose value really changes
    (so the status and times the scheduler wrote meanwhile stay). Raises what
    ``stream_problems`` finds, writing nothing. A change of the title, start or end raises
    ``sequence``. Emits ``stream.updated`` with the fields changed (``starts_at`` among them
    when the drop moved); nothing when nothing changed. Returns the stream as saved."""
    unknown = set(changes) - {*STREAM_FIELDS, "shop"}
    if unknown:
        raise TypeError(f"not a stream field: {', '.join(sorted(unknown))}")
    locked = Stream.objects.select_for_update().get(pk=stream.pk)
    changes = {name: value for name, value in changes.items() if getattr(locked, name) != value}
    _refuse(stream_problems(stream=locked, changes=changes, now=now))
    if not changes:
        return locked
    for name, value in changes.items():
        setattr(locked, name, value)
    fields = list(changes)
    if set(fields) & set(SEQUENCED_FIELDS):
        locked.sequence += 1
        fields.append("sequence")
    locked.save(update_fields=fields)
    _stream_event("stream.updated", locked, changed=list(changes))
    return locked


@transaction.atomic
def stream_cancel(*, stream: Stream, now=None) -> Stream:
    """Cancel a scheduled drop: status ``cancelled``, ``cancelled_at``, ``sequence`` raised;
    its scheduled deals are cancelled (``deal.cancelled``) and any open one closed with its
    units back at its location (as ``stream_end`` does). Emits ``stream.cancelled`` to its
    viewers and shop (docs/events.md). A live drop is ended, not cancelled (StreamIsLive,
    409 ``stream_live``); an ended one stays ended (StreamIsEnded). Cancelling a cancelled
    drop again changes and sends nothing."""
    now = now or timezone.now()
    locked = Stream.objects.select_for_update().get(pk=stream.pk)
    if locked.status == Stream.Status.CANCELLED:
        return locked
    if locked.status == Stream.Status.LIVE:
        raise StreamIsLive()
    if locked.status == Stream.Status.ENDED:
        raise StreamIsEnded()
    pending = FlashDeal.objects.filter(stream=locked, status__in=[FlashDeal.Status.OPEN, FlashDeal.Status.SCHEDULED])
    for deal in _deals_in_lock_order(pending):
        deal_close(deal=deal, now=now)
    locked.status, locked.cancelled_at = Stream.Status.CANCELLED, now
    locked.sequence += 1
    locked.save(update_fields=["status", "cancelled_at", "sequence"])
    emit(
        "stream.cancelled",
        {
            "stream": locked.pk,
            "shop": locked.shop_id,
            "status": locked.status,
            "title": locked.title,
            "starts_at": iso_utc(locked.starts_at),
            "ends_at": iso_utc(locked.ends_at) if locked.ends_at else None,
            "sequence": locked.sequence,
            "cancelled_at": iso_utc(now),
        },
        groups=[*stream_groups(locked.pk), f"shop.{locked.shop_id}"],
    )
    return locked


@transaction.atomic
def stream_delete(*, stream: Stream) -> bool:
    """Delete a stream with its pins, annotations and deals; emits ``stream.deleted`` to its
    viewers, control room and shop. Refused while one of its deals is open
    (StreamHasOpenDeal: the deal holds units of its location) or when orders took units
    from one of its deals (StreamHasOrders: a release or a refund gives units back to the
    deal they came from). Orders bought in the stream keep their other details; their
    ``stream`` becomes null. False if the stream is gone already."""
    locked = Stream.objects.select_for_update().filter(pk=stream.pk).first()
    if locked is None:
        return False
    deals = list(FlashDeal.objects.select_for_update().filter(stream=locked))
    if any(deal.status == FlashDeal.Status.OPEN for deal in deals):
        raise StreamHasOpenDeal()
    if deals_with_orders(deal_ids=[deal.pk for deal in deals]):
        raise StreamHasOrders()
    payload = {"stream": locked.pk, "shop": locked.shop_id}
    locked.delete()
    emit(
        "stream.deleted",
        payload,
        groups=[*stream_groups(payload["stream"]), *control_groups(payload["stream"]), f"shop.{payload['shop']}"],
    )
    return True


@transaction.atomic
def stream_start(*, stream: Stream, now=None) -> Stream:
    """scheduled -> live; opens deals whose time has come. A cancelled drop never starts
    (StreamIsCancelled)."""
    now = now or timezone.now()
    locked = Stream.objects.select_for_update().get(pk=stream.pk)
    if locked.status == Stream.Status.LIVE:
        return locked
    if locked.status == Stream.Status.CANCELLED:
        raise StreamIsCancelled()
    if locked.status != Stream.Status.SCHEDULED:
        raise InvalidStreamTransition()
    locked.status, locked.started_at = Stream.Status.LIVE, now
    locked.save(update_fields=["status", "started_at"])
    emit(
        "stream.started",
        {"stream": locked.pk, "shop": locked.shop_id, "status": locked.status},
        groups=[*stream_groups(locked.pk), f"shop.{locked.shop_id}"],
    )
    due = FlashDeal.objects.filter(stream=locked, status=FlashDeal.Status.SCHEDULED, opens_at__lte=now)
    for deal in _deals_in_lock_order(due):
        deal_open(deal=deal, now=now)
    return locked


def _deals_in_lock_order(deals) -> list[FlashDeal]:
    """Lock ``deals`` (by id), then return them ordered by the stock row each moves units
    out of or back into: opening or closing them one by one then locks deals before stock
    rows and stock rows by id, the order a buy takes them in (docs/pricing.md, "Claims"),
    so ending a stream cannot deadlock with a multi-line buy."""
    locked = list(deals.select_for_update().select_related("stream").order_by("pk"))
    defaults = {}

    def level_id(deal: FlashDeal) -> int:
        location_id = deal.location_id
        if location_id is None:
            if deal.stream.shop_id not in defaults:
                defaults[deal.stream.shop_id] = location_default(shop=deal.stream.shop).pk
            location_id = defaults[deal.stream.shop_id]
        level, _ = StockLevel.objects.get_or_create(sku_id=deal.sku_id, location_id=location_id)
        return level.pk

    return sorted(locked, key=lambda deal: (level_id(deal), deal.pk))


@transaction.atomic
def stream_end(*, stream: Stream, now=None) -> Stream:
    """live (or scheduled) -> ended; closes its open deals, giving their stock back. A
    cancelled drop stays cancelled (StreamIsCancelled)."""
    now = now or timezone.now()
    locked = Stream.objects.select_for_update().get(pk=stream.pk)
    if locked.status == Stream.Status.ENDED:
        return locked
    if locked.status == Stream.Status.CANCELLED:
        raise StreamIsCancelled()
    live_deals = FlashDeal.objects.filter(stream=locked, status__in=[FlashDeal.Status.OPEN, FlashDeal.Status.SCHEDULED])
    for deal in _deals_in_lock_order(live_deals):
        deal_close(deal=deal, now=now)  # a scheduled one is cancelled
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
    """Pin a SKU of the stream's shop (again: no-op); emits ``pins.changed`` with the list.
    Not on a cancelled drop (StreamIsCancelled)."""
    if sku.shop_id != stream.shop_id:
        raise SkuNotInShop()
    locked = Stream.objects.select_for_update().filter(pk=stream.pk).first()  # serialise pin edits per stream
    if locked is not None and locked.status == Stream.Status.CANCELLED:
        raise StreamIsCancelled()
    if position is None:
        position = (Pin.objects.filter(stream=stream).aggregate(m=Max("position"))["m"] or 0) + 1
    pin, created = Pin.objects.get_or_create(stream=stream, sku=sku, defaults={"position": position})
    if created:
        location_default(shop=stream.shop)
        StockLevel.objects.get_or_create(sku=sku, location=location_default(shop=stream.shop))
        _pins_changed(stream)
    return pin


@transaction.atomic
def pins_reorder(*, stream: Stream, positions: dict[int, int]) -> bool:
    """Move pins: ``positions`` maps a pinned SKU's id to its new position (SKUs not pinned
    are ignored). Emits one ``pins.changed`` with the list in its new order when anything
    moved, so viewers' pages follow; returns whether anything moved."""
    Stream.objects.select_for_update().filter(pk=stream.pk).first()
    moved = False
    for pin in Pin.objects.filter(stream=stream, sku_id__in=list(positions)).order_by("pk"):
        position = positions[pin.sku_id]
        if pin.position != position:
            Pin.objects.filter(pk=pin.pk).update(position=position)
            moved = True
    if moved:
        _pins_changed(stream)
    return moved


@transaction.atomic
def pins_refresh(*, sku_ids=(), product_id: int | None = None, shop_id: int | None = None) -> int:
    """Tell the pages of the streams (not ended or cancelled) that pin one of ``sku_ids``, or
    a SKU of ``product_id``, or (a SKU deleted, whose pins are gone) every stream of
    ``shop_id``, their pins as they are now: one ``pins.changed`` each. Returns how many
    streams were told."""
    streams = Stream.objects.exclude(status__in=[Stream.Status.ENDED, Stream.Status.CANCELLED])
    if shop_id is not None:
        streams = streams.filter(shop_id=shop_id)
    else:
        pinned = (
            Pin.objects.filter(sku_id__in=list(sku_ids))
            if product_id is None
            else Pin.objects.filter(sku__product_id=product_id)
        )
        streams = streams.filter(pk__in=pinned.values("stream_id"))
    told = 0
    for stream in streams.order_by("pk"):
        _pins_changed(stream)
        told += 1
    return told


@transaction.atomic
def pin_remove(*, stream: Stream, sku: SKU) -> bool:
    Stream.objects.select_for_update().filter(pk=stream.pk).first()
    deleted, _ = Pin.objects.filter(stream=stream, sku=sku).delete()
    if deleted:
        _pins_changed(stream)
    return bool(deleted)


# -- annotations (the shoppable replay's notes) ------------------------------------------------

ANNOTATION_FIELDS = ("offset_seconds", "text", "sku")


def _annotation_event(event_type: str, annotation: Annotation, **extra) -> None:
    payload = {
        "stream": annotation.stream_id,
        "id": annotation.pk,
        "offset_seconds": annotation.offset_seconds,
        "text": annotation.text,
        "sku": annotation.sku.code if annotation.sku_id else None,
        **extra,
    }
    emit(event_type, payload, groups=control_groups(annotation.stream_id))


@transaction.atomic
def annotation_add(*, stream: Stream, offset_seconds: int, text: str, sku: SKU | None = None) -> Annotation:
    """A note ``offset_seconds`` into the stream, optionally about a SKU of its shop; emits
    ``annotation.created``."""
    if sku is not None and sku.shop_id != stream.shop_id:
        raise SkuNotInShop()
    annotation = Annotation.objects.create(stream=stream, offset_seconds=offset_seconds, text=text, sku=sku)
    _annotation_event("annotation.created", annotation)
    return annotation


@transaction.atomic
def annotation_update(*, annotation: Annotation, changed) -> Annotation:
    """Save the ``changed`` fields of an edited note (those columns only); emits
    ``annotation.updated``."""
    fields = [name for name in dict.fromkeys(changed) if name in ANNOTATION_FIELDS]
    if not fields:
        return annotation
    if annotation.sku_id and annotation.sku.shop_id != annotation.stream.shop_id:
        raise SkuNotInShop()
    annotation.save(update_fields=fields)
    _annotation_event("annotation.updated", annotation, changed=fields)
    return annotation


@transaction.atomic
def annotation_delete(*, annotation: Annotation) -> None:
    payload = {"stream": annotation.stream_id, "id": annotation.pk}
    annotation.delete()
    emit("annotation.deleted", payload, groups=control_groups(payload["stream"]))


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
        _deal_cancelled(deal)
        return deal
    location = deal.location or location_default(shop=deal.stream.shop)
    level, _ = StockLevel.objects.get_or_create(sku=deal.sku, location=location)
    level = StockLevel.objects.select_for_update().get(pk=level.pk)
    # Units sold early to holders of early access came off this shelf already.
    allocated = min(deal.quantity - deal.early_sold, level.available)
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


def _deal_cancelled(deal: FlashDeal) -> None:
    """``deal.cancelled``: a scheduled deal closed without ever opening (by hand, by the end
    of its stream, or past its time), for the control room; viewers never saw it."""
    emit("deal.cancelled", {"stream": deal.stream_id, **deal_row(deal)}, groups=control_groups(deal.stream_id))


@transaction.atomic
def deal_close(*, deal: FlashDeal, now=None) -> FlashDeal:
    """Close the deal and give its unsold units back to the location (``deal.closed``); a
    scheduled deal is cancelled (``deal.cancelled``)."""
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
    else:
        _deal_cancelled(deal)
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
    else:
        _deal_scheduled(deal)
    return deal


# What may be set of a scheduled deal (everything else, status, remaining and version, is
# the scheduler's and the buy path's), and of an open one (its units are set aside at its
# location at its price): nothing else, and nothing at all once it is closed.
DEAL_TERMS = ("sku", "location", "price", "quantity", "per_buyer_limit", "opens_at", "closes_at")
OPEN_DEAL_TERMS = ("closes_at",)


def _deal_scheduled(deal: FlashDeal) -> None:
    """``deal.scheduled``: a scheduled deal's terms, as they are now (on scheduling and on
    every change before it opens), for the control room (viewers see deals once open)."""
    emit("deal.scheduled", {"stream": deal.stream_id, **deal_row(deal)}, groups=control_groups(deal.stream_id))


@transaction.atomic
def deal_schedule(*, stream: Stream, sku: SKU, price, quantity: int, opens_at, closes_at, **terms) -> FlashDeal:
    """A new flash deal, scheduled; the scheduler opens it at ``opens_at`` (``terms``:
    ``location``, ``per_buyer_limit``). Emits ``deal.scheduled``. Precondition: the terms are
    valid (``FlashDeal.clean``: the admin's form checks them). Not on a cancelled drop
    (StreamIsCancelled: its deals never open)."""
    _deal_in_shop(stream=stream, sku=sku, location=terms.get("location"))
    unknown = set(terms) - {"location", "per_buyer_limit"}
    if unknown:
        raise TypeError(f"not a deal term: {', '.join(sorted(unknown))}")
    status = Stream.objects.select_for_update().filter(pk=stream.pk).values_list("status", flat=True).first()
    if status == Stream.Status.CANCELLED:
        raise StreamIsCancelled()
    deal = FlashDeal.objects.create(
        stream=stream, sku=sku, price=price, quantity=quantity, opens_at=opens_at, closes_at=closes_at, **terms
    )
    _deal_scheduled(deal)
    return deal


def _deal_in_shop(*, stream: Stream, sku: SKU, location) -> None:
    """A deal sells its stream's shop's SKU out of that shop's location (None: the default)."""
    if sku.shop_id != stream.shop_id:
        raise SkuNotInShop()
    if location is not None and location.shop_id != stream.shop_id:
        raise LocationNotInShop()


class DealTermsSet(NamedTuple):
    deal: FlashDeal
    saved: list[str]  # the terms written
    refused: list[str]  # terms not written: the deal opened or closed since they were checked


@transaction.atomic
def deal_terms_set(*, deal: FlashDeal, changed) -> DealTermsSet:
    """Write the ``changed`` terms of an edited ``deal`` (its other attributes are never
    written: units sold and ticks that opened or closed the deal stay as they are). The row
    is re-read under its lock, so deal_open / deal_close and this take turns; what its status
    no longer allows is refused, not written. A scheduled deal emits ``deal.scheduled``; an
    open one's new closing time goes through deal_close_at_set (``deal.changed``)."""
    current = FlashDeal.objects.select_for_update().select_related("sku", "stream").get(pk=deal.pk)
    if {"sku", "location"} & set(changed):
        _deal_in_shop(stream=current.stream, sku=deal.sku, location=deal.location)
    allowed = {
        FlashDeal.Status.SCHEDULED: DEAL_TERMS,
        FlashDeal.Status.OPEN: OPEN_DEAL_TERMS,
    }.get(current.status, ())
    if current.status == FlashDeal.Status.SCHEDULED and current.early_sold:
        # Units sold early came off this SKU's shelf at this location: those stay, and the
        # deal keeps at least what it sold (docs/pricing.md, "Early access").
        allowed = tuple(
            name
            for name in allowed
            if name not in ("sku", "location") and (name != "quantity" or deal.quantity >= current.early_sold)
        )
    changed = [name for name in dict.fromkeys(changed) if name in DEAL_TERMS]
    saved = [name for name in changed if name in allowed]
    refused = [name for name in changed if name not in allowed]
    if current.status == FlashDeal.Status.OPEN and saved:
        current = deal_close_at_set(deal=current, closes_at=deal.closes_at)
    elif saved:
        for name in saved:
            setattr(current, name, getattr(deal, name))
        current.save(update_fields=saved)
        _deal_scheduled(current)
    return DealTermsSet(current, saved, refused)


def deals_with_orders(*, deal_ids) -> set[int]:
    """The ids of the deals some order line took units of: at the deal's price once open
    (``deal:<id>``) or sold early (``deal_early:<id>``). Such a deal stays: a release or a
    refund gives the units back through it."""
    keys = [f"{source}:{pk}" for pk in deal_ids for source in ("deal", DEAL_EARLY)]
    return {int(key.partition(":")[2]) for key in unit_sources_with_orders(keys=keys)}


@transaction.atomic
def deal_delete(*, deal: FlashDeal) -> bool:
    """Delete a scheduled or closed deal without orders; emits ``deal.deleted``. An open
    deal holds units taken out of its location's stock (DealIsOpen: close it first); a deal
    with orders stays (DealHasOrders). False if it is gone already."""
    current = FlashDeal.objects.select_for_update().select_related("sku").filter(pk=deal.pk).first()
    if current is None:
        return False
    if current.status == FlashDeal.Status.OPEN:
        raise DealIsOpen()
    # Not open, and locked: no buy can take its units before the delete commits.
    if deals_with_orders(deal_ids=[current.pk]):
        raise DealHasOrders()
    payload = {"stream": current.stream_id, "id": current.pk, "sku": current.sku.code, "sku_id": current.sku_id}
    current.delete()
    emit("deal.deleted", payload, groups=control_groups(payload["stream"]))
    return True


@transaction.atomic
def deal_open_now(*, deal: FlashDeal, now=None) -> FlashDeal:
    """Open a deal by hand (the control room's "Open now"): a scheduled deal's window then
    starts now. Raises DealNotOpen (``stream_not_live``) before the stream is live, and
    AnotherDealOpen while another deal on the SKU is open here; nothing is changed then."""
    now = now or timezone.now()
    # The stream's row first, then the deal's: the order stream_end takes them in (one
    # statement locking both could deadlock with a stream ending at that moment).
    stream = Stream.objects.select_for_update().filter(pk=deal.stream_id).first()
    deal = FlashDeal.objects.select_for_update().filter(pk=deal.pk).first()
    if stream is None or deal is None:  # deleted since the page loaded
        raise DealNotFound()
    deal.stream = stream
    if deal.stream.status != Stream.Status.LIVE:
        raise DealNotOpen("Start the stream before opening its deals.", code="stream_not_live")
    if deal.status != FlashDeal.Status.SCHEDULED:
        return deal
    if (
        FlashDeal.objects.filter(stream_id=deal.stream_id, sku_id=deal.sku_id, status=FlashDeal.Status.OPEN)
        .exclude(pk=deal.pk)
        .exists()
    ):
        raise AnotherDealOpen()
    if deal.opens_at > now:
        deal.opens_at = now
        deal.save(update_fields=["opens_at"])
    return deal_open(deal=deal, now=now)


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


def deal_take_statement(*, deal_id: int, quantity: int, now, after: str | None = None) -> tuple[str, list]:
    """``deal_take``'s conditional UPDATE (SQL and parameters), also a part of the buy's
    single-statement reserve: it returns ``available, version`` (the deal's remaining
    units), or no row when refused. With ``after`` (an earlier part of that statement), it
    takes only if that part returned a row (docs/pricing.md, "Claims")."""
    n = names(FlashDeal)
    gate = after_gate(after)
    # Identifiers from the model's meta; ``after`` is a CTE name from our code; values are parameters.
    return (
        f"UPDATE {n.table} SET {n.remaining} = {n.remaining} - %s, {n.version} = {n.version} + 1 "  # noqa: S608
        f"WHERE {n.id} = %s AND {n.status} = %s AND {n.closes_at} > %s AND {n.remaining} >= %s{gate} "
        f"RETURNING {n.remaining} AS available, {n.version} AS version",
        [quantity, deal_id, FlashDeal.Status.OPEN, now, quantity],
    )


def deal_early_take_statement(*, deal_id: int, quantity: int, minutes: int, now, after: str | None = None):
    """An early sale's count on the deal (SQL and parameters; a part of the buy's statement
    like ``deal_take_statement``): while the deal is scheduled, opens within ``minutes`` of
    ``now``, has not passed its closing time, and its early sales stay within its quantity.
    Returns ``available`` (the units it could still sell early) and ``version``, or no row.
    The units themselves come off the shelf in the same statement (a stock claim)."""
    n = names(FlashDeal)
    gate = after_gate(after)
    when = connection.ops.adapt_datetimefield_value(now)
    earliest = connection.ops.adapt_datetimefield_value(now + timedelta(minutes=minutes))
    # Identifiers from the model's meta; ``after`` is a CTE name from our code; values are parameters.
    return (
        f"UPDATE {n.table} SET {n.early_sold} = {n.early_sold} + %s "  # noqa: S608
        f"WHERE {n.id} = %s AND {n.status} = %s AND {n.opens_at} <= %s AND {n.closes_at} > %s "
        f"AND {n.early_sold} + %s <= {n.quantity}{gate} "
        f"RETURNING {n.quantity} - {n.early_sold} AS available, {n.version} AS version",
        [quantity, deal_id, FlashDeal.Status.SCHEDULED, earliest, when, quantity],
    )


def deal_early_refused(*, deal_id: int, now, sku: str | None = None) -> NoReturn:
    """Why an early sale took nothing: the deal opened, closed or is gone meanwhile
    (DealNotOpen: buy again, at the open deal), else its early units ran out."""
    named = {"sku": sku} if sku is not None else {}
    row = FlashDeal.objects.filter(pk=deal_id).values_list("status", "closes_at").first()
    if row is None or row[0] != FlashDeal.Status.SCHEDULED or row[1] <= now:
        raise DealNotOpen(**named)
    raise InsufficientStock(**named)


def deal_early_return(*, deal_id: int, quantity: int, shelf_id: int) -> int:
    """Lock the deal; while it has not opened, count an early sale's given-back units off its
    early sales. Returns ``shelf_id`` (the stock row the line's units came off, as the line
    recorded it): the units go back there (an opened deal set aside its units without them).
    Precondition: inside ``transaction.atomic()``."""
    # The deal's row only (``of``): a buy, a release or a refund never locks a stream row.
    deal = FlashDeal.objects.select_for_update(of=("self",)).filter(pk=deal_id).first()
    if deal is not None and deal.status == FlashDeal.Status.SCHEDULED:
        deal.early_sold = max(deal.early_sold - quantity, 0)
        deal.save(update_fields=["early_sold"])
    return shelf_id


def deal_take_refused(*, deal_id: int, now, sku: str | None = None) -> NoReturn:
    """Why a deal refused a take: DealNotOpen (closed, past its time, or gone), else
    InsufficientStock. ``sku`` (the line's code) goes into the answer."""
    named = {"sku": sku} if sku is not None else {}
    status = FlashDeal.objects.filter(pk=deal_id).values_list("status", "closes_at").first()
    if status is None or status[0] != FlashDeal.Status.OPEN or status[1] <= now:
        raise DealNotOpen(**named)
    raise InsufficientStock(**named)


def deal_return_target(*, deal_id: int) -> int | None:
    """Lock the deal; None while it is open (given-back units go to it), else the id of the
    stock row at its location (where they go instead). Precondition: inside
    ``transaction.atomic()``."""
    deal = FlashDeal.objects.select_for_update().get(pk=deal_id)
    if deal.status == FlashDeal.Status.OPEN:
        return None
    return StockLevel.objects.values_list("pk", flat=True).get(sku_id=deal.sku_id, location_id=deal.location_id)


def deal_return(*, deal_id: int, quantity: int):
    """Give units of a released order back: to the deal while it is open, else to the
    location its units came from (the deal already returned the rest when it closed).
    Precondition: inside ``transaction.atomic()``. Returns the DealCount or StockCount."""
    deal = FlashDeal.objects.select_for_update().get(pk=deal_id)
    if deal.status == FlashDeal.Status.OPEN:
        deal.remaining += quantity
        deal.version += 1
        deal.save(update_fields=["remaining", "version"])
        return DealCount(deal_id, deal.remaining, deal.version)
    level = StockLevel.objects.get(sku_id=deal.sku_id, location_id=deal.location_id)
    return stock_return(level_id=level.pk, quantity=quantity)


def deal_changed_event(*, deal_id: int, count: DealCount) -> tuple[str, dict, list]:
    deal = FlashDeal.objects.select_related("sku").get(pk=deal_id)
    deal.remaining, deal.version = count.remaining, count.version
    return deal_event(deal=deal, kind="changed")


# -- presence ----------------------------------------------------------------------------------


def _presence_key(stream_id: int) -> str:
    return f"streams:presence:{stream_id}"


class _LocalPresence:
    """This process's counted viewer sockets, per stream: the truth for this process. With a
    Redis cache it is also written to the stream's hash (field: this process's id) and kept
    alive by a heartbeat key that expires ``STREAM_PRESENCE_TTL_SECONDS`` after the process
    stops refreshing it (docs/streams.md, "Presence").

    Writes are shared (``_presence_sync``): one thread at a time writes every change made so
    far, and the threads whose changes it carries wait for it, not for writes of their own.
    A reconnect storm's 2,000 joins made 2,000 writes, one after another under the lock
    (py-spy: the handshakes' threads mostly waited there); now a handful."""

    def __init__(self):
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.counts: dict[int, int] = {}
        self.unwritten: set[int] = set()  # streams whose last change Redis did not take
        self.lock = threading.Lock()
        self.done = threading.Condition(self.lock)  # a write finished
        self.dirty: set[int] = set()  # streams changed since the last write began
        self.changes = 0  # changes made (a sequence number)
        self.written = 0  # changes carried by a finished write (or given to the heartbeat)
        self.writing = False
        self.heartbeat: threading.Thread | None = None


_local_presence = PerProcess(_LocalPresence)


def _presence_redis():
    """The Redis client behind the cache, or None (the in-process cache: one process, whose
    own counts are the whole truth)."""
    backend = getattr(cache, "_cache", None)
    return backend.get_client(write=True) if hasattr(backend, "get_client") else None


def _presence_hash_key(stream_id: int) -> str:
    # Not the bare counter's old key (``_presence_key``, a string): a rolling upgrade would
    # find a value of the wrong type there.
    return cache.make_key(f"streams:viewers:{stream_id}")


def _presence_alive_key(process_id: str) -> str:
    return cache.make_key(f"streams:presence:alive:{process_id}")


def _presence_write(local: _LocalPresence, stream_ids) -> None:
    """Write this process's counts of ``stream_ids`` (as they are now) and refresh its
    heartbeat, in one transaction (so a reader never sees a count without its heartbeat).
    Called by one thread at a time (``_presence_sync``), without the lock."""
    client = _presence_redis()
    if client is None:
        return
    ttl = max(1, settings.STREAM_PRESENCE_TTL_SECONDS)
    with client.pipeline(transaction=True) as pipe:
        pipe.set(_presence_alive_key(local.id), 1, px=int(ttl * 1000))
        for stream_id in stream_ids:
            key = _presence_hash_key(stream_id)
            count = local.counts.get(stream_id, 0)
            if count > 0:
                pipe.hset(key, local.id, count)
                pipe.expire(key, ttl * 3)  # every process gone: the hash goes too
            else:
                pipe.hdel(key, local.id)
        pipe.execute()


def _presence_sync(local: _LocalPresence, stream_ids=()) -> None:
    """Returns once a write that began after this call has finished: every change made
    before it (and ``stream_ids``, the heartbeat's) is in Redis, or, if Redis failed it, left
    to the heartbeat (``unwritten``). The counts a write sends are read as it goes, so they
    are never older than the changes it carries."""
    with local.lock:
        local.dirty.update(stream_ids)
        local.changes += 1
        mine = local.changes
        while local.written < mine:
            if local.writing:
                local.done.wait()
                continue
            local.writing = True
            ids, upto = local.dirty | local.unwritten, local.changes
            local.dirty, local.unwritten = set(), set()
            local.lock.release()
            try:
                _presence_write(local, ids)
                failed = None
            except Exception as exc:
                failed = exc
            finally:
                local.lock.acquire()
                local.writing = False
                local.written = max(local.written, upto)
                local.done.notify_all()
            if failed is not None:
                local.unwritten |= ids
                log.warning("presence write failed for streams %s; the heartbeat retries", sorted(ids), exc_info=failed)


def _presence_beat(local: _LocalPresence) -> None:
    """Refresh the heartbeat (and rewrite the counts, healing a flushed Redis) while the
    process lives; a killed process stops, and its viewers stop counting one TTL later."""
    while True:
        time.sleep(max(1, settings.STREAM_PRESENCE_TTL_SECONDS) / 3)
        try:
            with local.lock:
                ids = {sid for sid, count in local.counts.items() if count > 0}
            _presence_sync(local, ids)
        except Exception:
            log.warning("presence heartbeat failed; retrying", exc_info=True)


def _presence_change(stream_id: int, delta: int) -> None:
    local = _local_presence.get()
    with local.lock:
        count = max(local.counts.get(stream_id, 0) + delta, 0)
        if count:
            local.counts[stream_id] = count
        else:
            local.counts.pop(stream_id, None)
        local.dirty.add(stream_id)
        start = local.heartbeat is None and _presence_redis() is not None
        if start:
            local.heartbeat = threading.Thread(
                target=_presence_beat, args=(local,), name="stream-presence-heartbeat", daemon=True
            )
    if start:
        local.heartbeat.start()
    # The socket opens (or closes) all the same if Redis fails the write, and this process's
    # count stays the truth: the heartbeat writes it when Redis answers again. Raising here
    # would leave a counted socket that never leaves the count.
    _presence_sync(local)


def presence_join(*, stream_id: int) -> None:
    """A viewer socket of this process opened. Counted per process (see ``_LocalPresence``),
    so a process that dies without closing its sockets stops counting once its heartbeat
    expires."""
    _presence_change(stream_id, +1)


def presence_leave(*, stream_id: int) -> None:
    """A counted viewer socket of this process closed (however: the consumer calls this on
    every way out, crashes included). Never below zero."""
    _presence_change(stream_id, -1)


def presence_count(*, stream_id: int) -> int:
    """Viewers of the stream across every live web process: the sum of the counts whose
    process's heartbeat has not expired (the dead ones' fields are removed)."""
    client = _presence_redis()
    if client is None:
        return _local_presence.get().counts.get(stream_id, 0)
    key = _presence_hash_key(stream_id)
    entries = client.hgetall(key)
    if not entries:
        return 0
    processes = list(entries)
    beats = client.mget([_presence_alive_key(p.decode()) for p in processes])
    dead = [p for p, beat in zip(processes, beats, strict=True) if beat is None]
    if dead:
        client.hdel(key, *dead)
    return sum(max(int(entries[p]), 0) for p, beat in zip(processes, beats, strict=True) if beat is not None)


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
            if fn(now=now, **kwargs) is not None:
                done[kind] += 1
        except Exception:
            log.exception("streams tick: %s failed for %s", kind, kwargs)
            done["failed"] += 1

    def start_due(*, stream, now):
        try:
            return stream_start(stream=stream, now=now)
        except StreamIsCancelled:
            return None  # cancelled since this tick read it: it never starts

    for stream in Stream.objects.filter(status=Stream.Status.SCHEDULED, starts_at__lte=now):
        if stream.ends_at is None or stream.ends_at > now:
            attempt("started", start_due, stream=stream)
    for stream in Stream.objects.filter(status__in=[Stream.Status.LIVE, Stream.Status.SCHEDULED], ends_at__lte=now):
        attempt("ended", stream_end, stream=stream)
    for deal in FlashDeal.objects.filter(status=FlashDeal.Status.OPEN, closes_at__lte=now):
        attempt("closed", deal_close, deal=deal)
    for deal in FlashDeal.objects.filter(
        status=FlashDeal.Status.SCHEDULED, opens_at__lte=now, stream__status=Stream.Status.LIVE
    ):
        attempt("opened", deal_open, deal=deal)
    return done
