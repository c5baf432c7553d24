"""Reads of the devices app (docs/devices.md, "API")."""

from __future__ import annotations

import logging
import threading
import time
from functools import lru_cache

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Q

from creatorcommerce.fields import iso_utc
from creatorcommerce.sql import names

from .exceptions import DeviceNotFound
from .models import Cue, CueRule, Device, Room

log = logging.getLogger(__name__)

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


class _RuleTypes:
    """The event types some shop has an active cue rule for, read at most every
    ``DEVICES_RULE_TYPES_TTL_SECONDS`` per process (docs/devices.md, "Cue rules"): the spine
    asks it on every commit, so a buy's ``stock.changed`` costs no handler task while no
    shop has a rule for it. A rule saved in this process is seen at once; in another, within
    the TTL. A removed rule may still be asked for meanwhile, which only costs a task that
    finds nothing."""

    def __init__(self):
        self.lock = threading.Lock()
        self.types: frozenset[str] | None = None
        self.read_at = 0.0

    def fresh(self) -> frozenset[str] | None:
        types = self.types
        if types is not None and time.monotonic() - self.read_at < settings.DEVICES_RULE_TYPES_TTL_SECONDS:
            return types
        return None

    def get(self) -> frozenset[str] | None:
        """The types, or None if they could not be read (then every type counts: a task
        that finds nothing costs less than a cue lost)."""
        types = self.fresh()
        if types is not None:
            return types
        with self.lock:
            types = self.fresh()  # another thread may have read them while this one waited
            if types is not None:
                return types
            read_at = time.monotonic()
            try:
                types = frozenset(
                    CueRule.objects.filter(is_active=True).values_list("event_type", flat=True).distinct()
                )
            except DatabaseError:
                log.warning("could not read the cue rules' event types", exc_info=True)
                return None
            self.types, self.read_at = types, read_at
        return types

    def forget(self) -> None:
        self.types = None


rule_types = _RuleTypes()


def event_type_has_rules(event_type: str) -> bool:
    types = rule_types.get()
    return types is None or event_type in types


@lru_cache(maxsize=1)
def _rules_statement() -> tuple[str, tuple[str, ...]]:
    r, d, m = names(CueRule), names(Device), names(Room)
    fields = tuple(f.attname for f in CueRule._meta.concrete_fields)
    columns = ", ".join(f"r.{getattr(r, name)}" for name in fields)
    # Identifiers come from the models' meta; values are parameters.
    sql = (
        f"SELECT {columns}, d.{d.mqtt_id}, d.{d.room_id}, m.{m.shop_id} "  # noqa: S608
        f"FROM {r.table} r JOIN {d.table} d ON d.{d.id} = r.{r.device_id} JOIN {m.table} m ON m.{m.id} = d.{d.room_id} "
        f"WHERE r.{r.shop_id} = %s AND r.{r.event_type} = %s AND r.{r.is_active} AND d.{d.is_active} "
        f"ORDER BY r.{r.priority} DESC, r.{r.id}"
    )
    return sql, fields


def _loaded(model, **values):
    """An instance with only these fields loaded (``from_db`` takes them in the model's
    field order; the others are deferred)."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db(connection.alias, names, [values[name] for name in names])


def active_rules(shop_id: int, event_type: str) -> list[CueRule]:
    """The shop's active rules for ``event_type`` of its active devices, highest priority
    first, each with its device (id, MQTT id, room) and the room (id, shop): what a cue
    needs. One hand-written statement: the spine handler runs it for every event it gets,
    and the ORM's query cost ten times the statement's CPU (docs/devices.md, "Performance")."""
    sql, fields = _rules_statement()
    params_field = CueRule._meta.get_field("params")
    with connection.cursor() as cursor:
        cursor.execute(sql, [shop_id, event_type])
        rows = cursor.fetchall()
    rules = []
    for row in rows:
        values = dict(zip(fields, row, strict=False))
        values["params"] = params_field.from_db_value(values["params"], None, connection)
        rule = CueRule.from_db(connection.alias, fields, [values[name] for name in fields])
        mqtt_id, room_id, shop = row[len(fields) :]
        device = _loaded(Device, id=rule.device_id, mqtt_id=mqtt_id, room_id=room_id)
        device.room = _loaded(Room, id=room_id, shop_id=shop)
        rule.device = device
        rules.append(rule)
    return rules


def broker_devices() -> tuple[list[tuple[str, str]], list[str]]:
    """(mqtt_id, Mosquitto hash) of every active device that has one, and the mqtt_ids of the
    active devices without one (their password predates it: reset it). docs/devices.md,
    "Broker security"."""
    rows = Device.objects.filter(is_active=True).order_by("mqtt_id").values_list("mqtt_id", "mqtt_password_hash")
    return [(m, h) for m, h in rows if h], [m for m, h in rows if not h]
