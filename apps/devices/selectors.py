"""Reads of the devices app (docs/devices.md, "API")."""

from __future__ import annotations

from django.db.models import Q

from creatorcommerce.fields import iso_utc

from .exceptions import DeviceNotFound
from .models import Cue, Device

CUE_LOG_LIMIT = 200


def _iso(value):
    return iso_utc(value) if value else None


def device_body(device: Device) -> dict:
    return {
        "id": device.pk,
        "name": device.name,
        "kind": device.kind,
        "room": device.room_id,
        "online": device.online,
        "last_seen": _iso(device.last_seen),
    }


def devices_of(shop) -> list[dict]:
    return [device_body(d) for d in Device.objects.filter(room__shop=shop).order_by("room_id", "name", "pk")]


def device_of(shop, device_id: int) -> Device:
    device = Device.objects.select_related("room").filter(pk=device_id, room__shop=shop).first()
    if device is None:
        raise DeviceNotFound()
    return device


def cue_body(cue: Cue) -> dict:
    return {
        "id": cue.pk,
        "device": cue.device_id,
        "kind": cue.kind,
        "params": cue.params,
        "event": cue.event_type,
        "stream": cue.stream_id,
        "status": cue.status,
        "detail": cue.detail,
        "issued_at": iso_utc(cue.issued_at),
        "expires_at": iso_utc(cue.expires_at),
        "sent_at": _iso(cue.sent_at),
        "acked_at": _iso(cue.acked_at),
        "latency_ms": cue.latency_ms,
    }


def cues_of(shop, *, stream_id: int | None = None, streamless: bool = False, limit: int = CUE_LOG_LIMIT) -> list[dict]:
    """The shop's newest cues (at most ``limit``), of one stream if given, and with
    ``streamless`` also the shop's cues of no stream (the control room's log)."""
    cues = Cue.objects.filter(device__room__shop=shop)
    if stream_id is not None:
        scope = Q(stream_id=stream_id) | Q(stream__isnull=True) if streamless else Q(stream_id=stream_id)
        cues = cues.filter(scope)
    return [cue_body(c) for c in cues.order_by("-issued_at", "-pk")[:limit]]
