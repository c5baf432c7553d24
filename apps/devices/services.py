"""Writes of the devices app (docs/devices.md): rooms, devices and their credentials, cue
rules, and each cue's life: created from a spine event (one per matching rule, once however
often the event is delivered), sent, then acked or failed exactly once."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import connection, transaction
from django.utils import timezone

from apps.catalog.models import Location
from apps.streams.extras import stream_variant
from apps.streams.models import Stream
from apps.streams.services import control_groups, shop_control_groups
from creatorcommerce.fields import iso_utc
from creatorcommerce.mqtt import parse_mqtt_url
from creatorcommerce.spine.events import emit, emit_many, emit_many_when
from creatorcommerce.sql import insert_new, names

from . import mosquitto
from .exceptions import InvalidCue, InvalidCueRule
from .models import Cue, CueKind, CueRule, Device, EventType, Room
from .params import check_params
from .selectors import active_rules, rule_types

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10
MAX_TIMEOUT_S = 300  # a rule's timeout, at most (seconds)
MANUAL = "manual"

# -- rooms and devices --------------------------------------------------------------------------


def room_create(*, shop, name: str, venue: Location | None = None) -> Room:
    if venue is not None and (venue.shop_id != shop.pk or venue.kind != Location.Kind.VENUE):
        raise InvalidCueRule("The venue must be a venue location of the same shop.", code="invalid_venue")
    with transaction.atomic():
        return Room.objects.create(shop=shop, name=name, venue=venue)


def _new_password() -> tuple[str, dict]:
    """A random password and what is kept of it: its Django hash (``device_check_password``)
    and its Mosquitto ``$7$`` hash (the broker's password file, ``manage.py mqtt_auth``)."""
    password = secrets.token_urlsafe(24)
    return password, {"password_hash": make_password(password), "mqtt_password_hash": mosquitto.password_hash(password)}


MQTT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def mqtt_id_problem(mqtt_id) -> tuple[str, str] | None:
    """(code, message) if ``mqtt_id`` cannot be a device's MQTT id. It is the device's broker
    username and its topic level: lower-case letters, digits, ``-`` and ``_``; never the
    server's own username, nor ``cc-...`` (the node's own accounts and client ids), so no
    shop can take the server's place in the broker's password file (docs/devices.md,
    "Broker security")."""
    if not isinstance(mqtt_id, str) or not MQTT_ID.fullmatch(mqtt_id):
        return "invalid_mqtt_id", "The MQTT id is 1 to 64 lower-case letters, digits, - and _."
    server = parse_mqtt_url(settings.MQTT_URL).username if settings.MQTT_URL else None
    if mqtt_id.startswith("cc-") or mqtt_id == server:
        return "reserved_mqtt_id", "That MQTT id is reserved for the server."
    return None


def device_create(*, room: Room, name: str, kind: str, mqtt_id: str) -> tuple[Device, str]:
    """The device and its MQTT password, shown this once: only its hashes are kept
    (docs/devices.md, "Credentials")."""
    if kind not in Device.Kind.values:
        raise InvalidCueRule(f"Unknown device kind {kind!r}.", code="invalid_device_kind")
    problem = mqtt_id_problem(mqtt_id)
    if problem is not None:
        raise InvalidCueRule(problem[1], code=problem[0], field="mqtt_id")
    password, hashes = _new_password()
    with transaction.atomic():
        device = Device.objects.create(room=room, name=name, kind=kind, mqtt_id=mqtt_id, **hashes)
    return device, password


def device_reset_password(*, device: Device) -> str:
    """A new MQTT password, shown this once; the broker takes it once ``mqtt_auth`` has
    rewritten its password file (docs/devices.md, "Broker security")."""
    password, hashes = _new_password()
    with transaction.atomic():
        Device.objects.filter(pk=device.pk).update(**hashes)
    for field, value in hashes.items():
        setattr(device, field, value)
    return password


def device_check_password(device: Device, password: str) -> bool:
    return check_password(password, device.password_hash)


def device_set_active(*, device: Device, active: bool) -> Device:
    """Enable or disable a device. A disabled one makes no cues and is left out of the
    broker's files the next time ``mqtt_auth`` writes them (docs/devices.md)."""
    with transaction.atomic():
        Device.objects.filter(pk=device.pk).update(is_active=active)
    device.is_active = active
    return device


def device_status_set(*, mqtt_id: str, online: bool, now=None) -> bool:
    """Record a device's retained status (``online``) or last will (``offline``); True if it
    changed. ``last_seen`` moves whenever the device says it is online."""
    now = now or timezone.now()
    with transaction.atomic():
        device = Device.objects.select_for_update().select_related("room").filter(mqtt_id=mqtt_id).first()
        if device is None:
            return False
        changed = device.online != online
        device.online = online
        if online:
            device.last_seen = now
        device.save(update_fields=["online", "last_seen"])
        if changed:
            emit(
                "device.status_changed",
                {"device": device.pk, "shop": device.room.shop_id, "room": device.room_id, "online": online},
                groups=[f"shop.{device.room.shop_id}", *shop_control_groups(device.room.shop_id)],
            )
    return changed


# -- rules --------------------------------------------------------------------------------------


RULE_FIELDS = (
    "event_type",
    "stream",
    "sku",
    "available_at_most",
    "device",
    "kind",
    "params",
    "priority",
    "timeout_s",
    "is_active",
)


def _rule_problems(*, shop, fields: dict) -> list[tuple[str, str, str]]:
    """(field, code, message) for each rule a cue rule's ``fields`` break."""
    problems = []
    event_type, device = fields.get("event_type"), fields.get("device")
    stream, sku = fields.get("stream"), fields.get("sku")
    if event_type not in EventType.values:
        problems.append(("event_type", "invalid_event_type", f"Cue rules take {', '.join(EventType.values)}."))
    if device is None or device.room.shop_id != shop.pk:
        problems.append(("device", "invalid_device", "Choose a device of this shop."))
    if stream is not None and stream.shop_id != shop.pk:
        problems.append(("stream", "invalid_stream", "The stream is not this shop's."))
    if sku is not None and sku.shop_id != shop.pk:
        problems.append(("sku", "invalid_sku", "The SKU is not this shop's."))
    if fields.get("available_at_most") is not None and event_type != EventType.STOCK_CHANGED:
        problems.append(("available_at_most", "invalid_threshold", "A stock threshold is for stock.changed only."))
    if not 1 <= (fields.get("timeout_s") or 0) <= MAX_TIMEOUT_S:
        problems.append(("timeout_s", "invalid_timeout", f"The timeout is 1 to {MAX_TIMEOUT_S} seconds."))
    if not 0 <= (fields.get("priority") if fields.get("priority") is not None else -1) <= 9:
        problems.append(("priority", "invalid_priority", "The priority is 0 to 9."))
    try:
        check_params(fields.get("kind"), fields.get("params"))
    except InvalidCue as error:
        field = "kind" if error.code == "invalid_cue_kind" else "params"
        problems.append((field, error.code, error.message))
    return problems


def cue_rule_errors(*, shop, fields: dict) -> dict[str, list[str]]:
    """What ``cue_rule_save`` would refuse, as messages per field (the admin's form)."""
    errors: dict[str, list[str]] = {}
    for field, _code, message in _rule_problems(shop=shop, fields=fields):
        errors.setdefault(field, []).append(message)
    return errors


def cue_rule_save(*, shop, rule: CueRule | None = None, **fields) -> CueRule:
    """Create (``rule`` None) or change a cue rule of ``shop``; ``InvalidCueRule`` (with the
    ``field``) or ``InvalidCue`` for params the kind does not take, and nothing saved."""
    if rule is not None:
        fields = {**{name: getattr(rule, name) for name in RULE_FIELDS}, **fields}
    fields = {
        "params": {},
        "stream": None,
        "sku": None,
        "available_at_most": None,
        "priority": 5,
        "timeout_s": DEFAULT_TIMEOUT_S,
        "is_active": True,
        **fields,
    }
    problems = _rule_problems(shop=shop, fields=fields)
    if problems:
        field, code, message = problems[0]
        if code.startswith("invalid_cue_"):
            raise InvalidCue(message, code=code, field=field)
        raise InvalidCueRule(message, code=code, field=field)
    fields["params"] = check_params(fields["kind"], fields["params"])
    with transaction.atomic():
        # Which event types have rules, as this process caches it: forgotten now (this
        # transaction reads its own rule) and again once it commits (docs/devices.md).
        rule_types.forget()
        transaction.on_commit(rule_types.forget)
        if rule is None:
            return CueRule.objects.create(shop=shop, **fields)
        for name, value in fields.items():
            setattr(rule, name, value)
        rule.save()
        return rule


def cue_rule_create(*, shop, event_type: str, device: Device, kind: str, **fields) -> CueRule:
    return cue_rule_save(shop=shop, event_type=event_type, device=device, kind=kind, **fields)


def room_update(*, room: Room, name: str, venue: Location | None) -> Room:
    if venue is not None and (venue.shop_id != room.shop_id or venue.kind != Location.Kind.VENUE):
        raise InvalidCueRule("The venue must be a venue location of the same shop.", code="invalid_venue")
    with transaction.atomic():
        room.name, room.venue = name, venue
        room.save(update_fields=["name", "venue"])
    return room


def device_update(*, device: Device, name: str, room: Room) -> Device:
    """A device's name and room (within its shop); its MQTT id and kind stay."""
    if room.shop_id != device.room.shop_id:
        raise InvalidCueRule("The room is not this shop's.", code="invalid_room")
    with transaction.atomic():
        device.name, device.room = name, room
        device.save(update_fields=["name", "room"])
    return device


# -- cues from events ---------------------------------------------------------------------------


def _event_scope(event_type: str, payload: dict) -> tuple[int | None, int | None, set[int]]:
    """(shop, stream, SKU ids) an event is about."""
    stream = payload.get("stream")
    shop = payload.get("shop")
    if shop is None and stream is not None:
        shop = Stream.objects.filter(pk=stream).values_list("shop_id", flat=True).first()
    skus: set[int] = set()
    if "sku_id" in payload:
        skus.add(payload["sku_id"])
    for line in payload.get("lines", ()):
        skus.add(line["sku_id"])
    return shop, stream, skus


def _matches(rule: CueRule, stream: int | None, skus: set[int], payload: dict) -> bool:
    if rule.stream_id is not None and rule.stream_id != stream:
        return False
    if rule.sku_id is not None and rule.sku_id not in skus:
        return False
    return not (rule.available_at_most is not None and payload.get("available", 0) > rule.available_at_most)


URGENCY_SLOT = "led_urgency_cue"  # docs/experiments.md, "Stream-level slots"


def _live_stream(shop: int) -> int | None:
    """The shop's live stream, if it has exactly one: where a cue of no stream is seen."""
    live = list(Stream.objects.filter(shop_id=shop, status=Stream.Status.LIVE).values_list("pk", flat=True)[:2])
    return live[0] if len(live) == 1 else None


def _urgency_held_back(shop: int, stream: int | None, now) -> Callable[[CueRule], bool]:
    """Whether an urgency rule's cue is held back: a running experiment on the
    ``led_urgency_cue`` slot gives the cue's stream (the event's, else the rule's, else the
    shop's one live stream) the variant ``off`` (docs/devices.md, "Experiments"). Asked once
    per stream and event, only for urgency rules that matched (the stream's exposure); with
    no such experiment, no query."""
    variants: dict[int | None, str | None] = {}

    def held_back(rule: CueRule) -> bool:
        key = stream or rule.stream_id
        if key not in variants:
            variants[key] = stream_variant(
                URGENCY_SLOT, shop_id=shop, stream_id=key if key is not None else lambda: _live_stream(shop), at=now
            )
        return variants[key] == "off"

    return held_back


def cues_for_event(
    *, event_id: int, event_type: str, payload: dict, now=None, publish: Callable[[list[Cue]], None] | None = None
) -> list[int]:
    """One cue per active rule of the event's shop that matches it, highest priority first;
    a rule that already has its cue for this event (a second delivery) makes none. Returns
    their ids.

    The new cues are enqueued to ``send_cue`` when this transaction commits; or, with
    ``publish`` (the handler runs in a worker that is connected to the MQTT broker,
    docs/devices.md, "Dispatch"), those not expired yet are made ``sent`` at once, with
    their ``cue.sent``, in this transaction, and handed to ``publish`` after it commits."""
    now = now or timezone.now()
    shop, stream, skus = _event_scope(event_type, payload)
    if shop is None:
        return []
    rules = [rule for rule in active_rules(shop, event_type) if _matches(rule, stream, skus, payload)]
    held_back = _urgency_held_back(shop, stream, now)
    rules = [rule for rule in rules if not (rule.kind == CueKind.URGENCY and held_back(rule))]
    if not rules:
        return []
    sent_at = timezone.now()
    cues = []
    for rule in rules:
        expires_at = now + timedelta(seconds=rule.timeout_s)
        sending = publish is not None and expires_at > sent_at
        cues.append(
            Cue(
                device=rule.device,
                rule=rule,
                stream_id=stream or rule.stream_id,
                kind=rule.kind,
                params=rule.params,
                event_type=event_type,
                event_id=event_id,
                priority=rule.priority,
                issued_at=now,
                expires_at=expires_at,
                status=Cue.Status.SENT if sending else Cue.Status.QUEUED,
                sent_at=sent_at if sending else None,
            )
        )
    # One INSERT; a rule whose cue for this event exists (a duplicate delivery) makes none.
    created = insert_new(cues, key="rule_id")
    sent = [cue for cue in created if cue.status == Cue.Status.SENT]
    if sent:
        emit_many([("cue.sent", _sent_payload(cue), _groups(cue)) for cue in sent])
        transaction.on_commit(lambda: publish(sent))
    queued = [cue.pk for cue in created if cue.status == Cue.Status.QUEUED]
    if queued:
        transaction.on_commit(lambda: enqueue(queued))
    return [cue.pk for cue in created]


def cue_fire(*, device: Device, kind: str, params: dict | None = None, stream: Stream | None = None, now=None) -> Cue:
    """A cue fired by hand (the control room), sent like any other; not to a disabled device
    (``device_disabled``)."""
    now = now or timezone.now()
    if not device.is_active:
        raise InvalidCue("The device is disabled.", code="device_disabled")
    params = check_params(kind, params)
    if stream is not None and stream.shop_id != device.room.shop_id:
        raise InvalidCue("The stream is not this shop's.", code="invalid_stream")
    with transaction.atomic():
        cue = Cue.objects.create(
            device=device,
            stream=stream,
            kind=kind,
            params=params,
            event_type=MANUAL,
            issued_at=now,
            expires_at=now + timedelta(seconds=DEFAULT_TIMEOUT_S),
        )
        transaction.on_commit(lambda: enqueue([cue.pk]))
    return cue


def enqueue(cue_ids) -> None:
    """Hand new cues to ``send_cue`` on the ``cues`` queue; without a Celery broker but with
    an MQTT broker, to this process's sending thread (``sender.py``), so that no request
    waits on the MQTT broker."""
    from celery import current_app

    from .tasks import send_cue

    if current_app.conf.task_always_eager and settings.MQTT_URL:
        from .sender import cue_sender

        for cue_id in cue_ids:
            cue_sender().submit(cue_id)
        return
    failed = []
    for cue_id in cue_ids:
        try:
            send_cue.delay(cue_id)
        except Exception:
            log.exception("could not enqueue cue %s", cue_id)
            failed.append(cue_id)
    if failed:
        # The broker is down: the sweep enqueues these again while they have not expired.
        Cue.objects.filter(pk__in=failed).update(enqueue_failed=True)


# -- a cue's life -------------------------------------------------------------------------------


def _cue_payload(cue: Cue) -> dict:
    return {
        "cue": cue.pk,
        "shop": cue.device.room.shop_id,
        "room": cue.device.room_id,
        "device": cue.device_id,
        "stream": cue.stream_id,
        "kind": cue.kind,
    }


def _groups(cue: Cue) -> list[str]:
    """The shop's tools, and the control room: the cue's stream's (``control.<stream>``), or,
    for a cue of no stream (a stock threshold's), every control room of the shop. Never a
    viewer's group (docs/devices.md, "Control room")."""
    return _cue_groups(cue.device.room.shop_id, cue.stream_id)


def _cue_groups(shop: int, stream: int | None) -> list[str]:
    return [f"shop.{shop}", *(control_groups(stream) if stream else shop_control_groups(shop))]


def _locked(cue_id: int) -> Cue | None:
    return Cue.objects.select_for_update(of=("self",)).select_related("device__room").filter(pk=cue_id).first()


def cue_mark_sent(*, cue: Cue, now=None) -> bool:
    """queued → sent (just before it is published), with ``cue.sent``; False if it was no
    longer queued. ``cue`` was read with its device and room. One conditional UPDATE that
    records its event (one statement on PostgreSQL, ``emit_many_when``): the cue pipeline
    runs this for every cue (docs/devices.md, "Performance")."""
    now = now or timezone.now()
    c = names(Cue)
    statement = (
        f"UPDATE {c.table} SET {c.status} = %s, {c.sent_at} = %s "  # noqa: S608 (identifiers from the model)
        f"WHERE {c.id} = %s AND {c.status} = %s AND {c.expires_at} > %s RETURNING {c.id}"
    )
    at = connection.ops.adapt_datetimefield_value(now)
    params = [Cue.Status.SENT, at, cue.pk, Cue.Status.QUEUED, at]
    payload = _sent_payload(cue, sent_at=now)
    if emit_many_when(statement, params, [("cue.sent", payload, _groups(cue))]) is None:
        return False
    cue.status, cue.sent_at = Cue.Status.SENT, now
    return True


def _sent_payload(cue: Cue, *, sent_at=None) -> dict:
    return {
        **_cue_payload(cue),
        "event": cue.event_type,
        "sent_at": iso_utc(sent_at or cue.sent_at),
        "expires_at": iso_utc(cue.expires_at),
    }


def cue_claim_republish(*, cue_id: int, now=None) -> bool:
    """A sent cue the broker never confirmed may be published again by one task only, and
    only once the last attempt had its full PUBACK wait (``sent_at`` moves to now), and
    never after ``expires_at``. True if this caller may publish it."""
    now = now or timezone.now()
    wait = timedelta(seconds=settings.DEVICES_PUBACK_TIMEOUT_SECONDS)
    return bool(
        Cue.objects.filter(
            pk=cue_id, status=Cue.Status.SENT, puback_at__isnull=True, sent_at__lte=now - wait, expires_at__gt=now
        ).update(sent_at=now)
    )


def cue_mark_published(*, cue_id: int | None = None, cue_ids=(), now=None) -> None:
    """The broker confirmed the publish (PUBACK) of ``cue_id`` (or each of ``cue_ids``): one
    statement."""
    ids = [cue_id] if cue_id is not None else list(cue_ids)
    if not ids:
        return
    c = names(Cue)
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {c.table} SET {c.puback_at} = %s WHERE {c.id} IN ({marks}) AND {c.puback_at} IS NULL",  # noqa: S608 (identifiers from the model)
            [connection.ops.adapt_datetimefield_value(now or timezone.now()), *ids],
        )


def cue_fail(*, cue_id: int, detail: str, statuses=(Cue.Status.SENT,), now=None) -> bool:
    """→ failed, if the cue is still in one of ``statuses``; True if this call failed it."""
    with transaction.atomic():
        cue = _locked(cue_id)
        if cue is None or cue.status not in statuses:
            return False
        cue.status, cue.detail = Cue.Status.FAILED, detail[:500]
        cue.save(update_fields=["status", "detail"])
        emit("cue.failed", {**_cue_payload(cue), "detail": cue.detail}, groups=_groups(cue))
    return True


def cue_expire(*, cue_id: int) -> bool:
    """A queued cue whose ``expires_at`` passed before it could be sent: failed, never sent."""
    return cue_fail(cue_id=cue_id, detail="expired before it could be sent", statuses=(Cue.Status.QUEUED,))


def cue_record_ack(*, mqtt_id: str, message, now=None) -> str:
    """An ack from device ``mqtt_id`` (``{"id", "status": "done"|"failed", "detail"?}``).

    Only a ``sent`` cue of that very device moves (to ``acked`` or ``failed``): a duplicate
    ack (QoS 1 redelivers) or one after the timeout changes nothing. Returns what happened:
    ``acked``, ``failed``, ``ignored`` or ``invalid``."""
    now = now or timezone.now()
    if not isinstance(message, dict) or message.get("status") not in ("done", "failed"):
        return "invalid"
    cue_id = message.get("id")
    if not isinstance(cue_id, int) or isinstance(cue_id, bool):
        return "invalid"
    detail = message.get("detail")
    # A device's text, shown to creators: printable characters only (a NUL would not even
    # store), at most 500.
    detail = "".join(ch for ch in detail[:500] if ch.isprintable()) if isinstance(detail, str) else ""
    if connection.vendor == "postgresql":
        return _record_ack_in_one_statement(mqtt_id, cue_id, message["status"] == "done", detail, now)
    with transaction.atomic():
        Device.objects.filter(mqtt_id=mqtt_id).update(last_seen=now)
        cue = _locked(cue_id)
        if cue is None or cue.device.mqtt_id != mqtt_id or cue.status != Cue.Status.SENT:
            return "ignored"
        if cue.expires_at <= now:
            return "ignored"  # too late: the device ignores a cue past expires_at, so must we
        if message["status"] == "done":
            cue.status, cue.acked_at = Cue.Status.ACKED, now
            cue.latency_ms = max(0, round((now - cue.sent_at).total_seconds() * 1000)) if cue.sent_at else None
            cue.detail = detail
            cue.save(update_fields=["status", "acked_at", "latency_ms", "detail"])
            payload = {**_cue_payload(cue), "latency_ms": cue.latency_ms, "detail": cue.detail}
            emit("cue.acked", payload, groups=_groups(cue))
            return "acked"
        cue.status, cue.acked_at, cue.detail = Cue.Status.FAILED, now, detail or "the device reported a failure"
        cue.save(update_fields=["status", "acked_at", "detail"])
        emit("cue.failed", {**_cue_payload(cue), "detail": cue.detail}, groups=_groups(cue))
        return "failed"


@lru_cache(maxsize=2)
def _ack_statement(done: bool) -> str:
    """PostgreSQL: the device's ``last_seen`` and the ack of one of its ``sent`` cues not past
    ``expires_at``, in one statement; returns what the event needs, or no row (``ignored``)."""
    c, d, r = names(Cue), names(Device), names(Room)
    since_sent = f"EXTRACT(EPOCH FROM (%s - cue.{c.sent_at}))"
    latency = f", {c.latency_ms} = GREATEST(0, ROUND({since_sent} * 1000))" if done else ""
    # Identifiers come from the models' meta; values are parameters.
    return (
        f"WITH seen AS (UPDATE {d.table} SET {d.last_seen} = %s WHERE {d.mqtt_id} = %s "  # noqa: S608
        f"RETURNING {d.id} AS device, {d.room_id} AS room) "
        f"UPDATE {c.table} AS cue SET {c.status} = %s, {c.acked_at} = %s, {c.detail} = %s{latency} FROM seen "
        f"WHERE cue.{c.id} = %s AND cue.{c.device_id} = seen.device AND cue.{c.status} = %s "
        f"AND cue.{c.expires_at} > %s "
        f"RETURNING seen.room, (SELECT {r.shop_id} FROM {r.table} WHERE {r.id} = seen.room), cue.{c.device_id}, "
        f"cue.{c.stream_id}, cue.{c.kind}, cue.{c.latency_ms}"
    )


def _record_ack_in_one_statement(mqtt_id: str, cue_id: int, done: bool, detail: str, now) -> str:
    """``cue_record_ack`` on PostgreSQL: one statement and the event's INSERT, where the ORM
    took five (the listener records every cue's ack: docs/devices.md, "Performance")."""
    at = connection.ops.adapt_datetimefield_value(now)
    if not done:
        detail = detail or "the device reported a failure"
    status = Cue.Status.ACKED if done else Cue.Status.FAILED
    params = [at, mqtt_id, status, at, detail, *([at] if done else []), cue_id, Cue.Status.SENT, at]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_ack_statement(done), params)
            row = cursor.fetchone()
        if row is None:
            return "ignored"
        room, shop, device, stream, kind, latency_ms = row
        payload = {"cue": cue_id, "shop": shop, "room": room, "device": device, "stream": stream, "kind": kind}
        if done:
            emit("cue.acked", {**payload, "latency_ms": latency_ms, "detail": detail}, groups=_cue_groups(shop, stream))
            return "acked"
        emit("cue.failed", {**payload, "detail": detail}, groups=_cue_groups(shop, stream))
        return "failed"


def cues_sweep(*, now=None) -> dict:
    """Fail sent cues with no ack by ``expires_at`` and queued cues that expired unsent;
    re-enqueue queued cues whose hand-over to the queue failed. Run by the listener every second and by
    beat (``apps.devices.tasks.sweep_cues``); any number may run at once."""
    now = now or timezone.now()
    counts = {"timed_out": 0, "expired": 0, "requeued": 0}
    overdue = Cue.objects.filter(status=Cue.Status.SENT, expires_at__lte=now).values_list("pk", "rule__timeout_s")
    for cue_id, timeout_s in overdue:
        seconds = timeout_s or DEFAULT_TIMEOUT_S
        if cue_fail(cue_id=cue_id, detail=f"no ack within {seconds} s"):
            counts["timed_out"] += 1
    for cue_id in Cue.objects.filter(status=Cue.Status.QUEUED, expires_at__lte=now).values_list("pk", flat=True):
        if cue_expire(cue_id=cue_id):
            counts["expired"] += 1
    # Only cues whose hand-over failed: a cue whose task waits in a busy queue, or retries
    # while the MQTT broker is away, already has its one task.
    with transaction.atomic():
        stuck = list(
            Cue.objects.select_for_update(skip_locked=True)
            .filter(status=Cue.Status.QUEUED, enqueue_failed=True, expires_at__gt=now)
            .values_list("pk", flat=True)[:500]
        )
        Cue.objects.filter(pk__in=stuck).update(enqueue_failed=False)
    if stuck:
        enqueue(stuck)
        counts["requeued"] = len(stuck)
    return counts
