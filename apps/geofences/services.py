"""Every write of the geofences app (docs/geofences.md): venues, their hours, pings and
presence, the dwell beat, and erasing a viewer's positions when they revoke consent."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.catalog.models import Location
from apps.consents.exceptions import ConsentRequired
from apps.consents.selectors import consent_granted_locked
from creatorcommerce.fields import iso_utc
from creatorcommerce.spine.events import emit, events_redact
from creatorcommerce.sql import names, rows_where

from .coupons import coupon_body, coupons_issue
from .exceptions import InvalidFence, NotAVenueLocation, PingInvalid
from .fence_cache import fence_cache, invalidate_on_commit
from .geometry import classify, validate_circle, validate_geojson
from .models import Position, Presence, Venue, VenueHours

NEARBY_M = 1000.0  # the ping's answer lists every venue this close (docs/geofences.md)

_VENUE_FIELDS = (
    "fence_kind",
    "fence",
    "center_lon",
    "center_lat",
    "radius_m",
    "time_zone",
    "dwell_seconds",
    "announcement",
    "announce_radius_m",
    "event_starts_at",
    "is_active",
)


# --- venues -----------------------------------------------------------------------------


def fence_clean(*, fence_kind: str, fence=None, center_lon=None, center_lat=None, radius_m=None) -> dict:
    """The fence fields, validated and normalised (the other kind's fields emptied), or
    ``InvalidFence``/``FenceUnsupported`` with the reason. Used by the services and by
    ``Venue.clean`` (the admin's field errors)."""
    if fence_kind == Venue.FenceKind.POLYGON:
        return {
            "fence_kind": fence_kind,
            "fence": validate_geojson(fence),
            "center_lon": None,
            "center_lat": None,
            "radius_m": None,
        }
    if fence_kind == Venue.FenceKind.CIRCLE:
        lon, lat, radius = validate_circle(center_lon, center_lat, radius_m)
        return {"fence_kind": fence_kind, "fence": None, "center_lon": lon, "center_lat": lat, "radius_m": radius}
    raise InvalidFence(f"The fence kind must be 'polygon' or 'circle', not {fence_kind!r}.")


def _full_clean(venue: Venue) -> None:
    try:
        venue.full_clean(exclude=["location", "fence"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise InvalidFence(f"{field}: {messages[0]}", code="invalid_venue", field=field) from exc


def _venue_changed(venue: Venue) -> None:
    Venue.objects.filter(pk=venue.pk).update(version=F("version") + 1, updated_at=timezone.now())
    venue.refresh_from_db(fields=["version", "updated_at"])
    emit(
        "venue.updated",
        {"venue": venue.pk, "shop": venue.location.shop_id, "version": venue.version, "is_active": venue.is_active},
        groups=[f"shop.{venue.location.shop_id}"],
    )
    invalidate_on_commit()


def _apply(venue: Venue, fields: dict) -> None:
    unknown = set(fields) - set(_VENUE_FIELDS)
    if unknown:
        raise TypeError(f"unknown venue fields: {sorted(unknown)}")
    fence_keys = {"fence_kind", "fence", "center_lon", "center_lat", "radius_m"}
    for key, value in fields.items():
        if key not in fence_keys:
            setattr(venue, key, value)
    if fence_keys & set(fields) or venue._state.adding:
        current = {key: getattr(venue, key) for key in fence_keys}
        current.update({key: fields[key] for key in fence_keys & set(fields)})
        for key, value in fence_clean(**current).items():
            setattr(venue, key, value)
    _full_clean(venue)


def venue_create(
    *,
    shop,
    location: Location | None = None,
    name: str | None = None,
    address: str = "",
    hours: list[tuple[int, time, time]] | None = None,
    **fields,
) -> Venue:
    """A venue at ``location`` (a location of kind ``venue`` of ``shop``), or at a new
    venue location named ``name``. The fence fields are validated (``fence_clean``)."""
    with transaction.atomic():
        if location is None:
            if not name:
                raise NotAVenueLocation("Name the new venue location, or give a location of kind 'venue'.")
            # A venue's location is made here, with the venue: the catalog has no other
            # writer of venue locations (its stock rows are written by catalog services).
            location = Location(shop=shop, name=name, kind=Location.Kind.VENUE, address=address)
            try:
                location.full_clean()
            except ValidationError as exc:
                field, messages = next(iter(exc.message_dict.items()))
                raise NotAVenueLocation(f"{field}: {messages[0]}", code="invalid_location", field=field) from exc
            location.save()
        elif location.shop_id != shop.pk or location.kind != Location.Kind.VENUE:
            raise NotAVenueLocation()
        return _venue_save(Venue(location=location), fields, hours)


def venue_update(*, venue: Venue, hours: list[tuple[int, time, time]] | None = None, **fields) -> Venue:
    """Change a venue's fence, hours (replaced when given), announcement, ..."""
    with transaction.atomic():
        return _venue_save(venue, fields, hours)


def _venue_save(venue: Venue, fields: dict, hours) -> Venue:
    """Validate and save ``fields`` (and ``hours`` when given) on ``venue``, then bump its
    version and emit ``venue.updated``. Precondition: inside ``transaction.atomic()``."""
    _apply(venue, fields)
    venue.save()
    if hours is not None:
        _hours_replace(venue, hours)
    _venue_changed(venue)
    return venue


def venue_hours_set(*, venue: Venue, hours: list[tuple[int, time, time]]) -> Venue:
    """Replace a venue's opening hours (no rows: always open)."""
    with transaction.atomic():
        _hours_replace(venue, hours)
        _venue_changed(venue)
    return venue


def _hours_replace(venue: Venue, hours) -> None:
    rows = []
    for weekday, opens, closes in hours:
        if weekday not in VenueHours.Weekday.values:
            raise InvalidFence(f"weekday must be 0 (Monday) to 6 (Sunday), not {weekday!r}.", code="invalid_hours")
        if opens == closes:
            raise InvalidFence("An opening interval needs different opening and closing times.", code="invalid_hours")
        rows.append(VenueHours(venue=venue, weekday=weekday, opens=opens, closes=closes))
    VenueHours.objects.filter(venue=venue).delete()
    VenueHours.objects.bulk_create(rows)


def venue_delete(*, venue: Venue) -> None:
    """Delete the venue (its fence, hours, presences and offers); its location and that
    location's stock stay."""
    with transaction.atomic():
        payload = {"venue": venue.pk, "shop": venue.location.shop_id}
        venue.delete()
        emit("venue.deleted", payload, groups=[f"shop.{payload['shop']}"])
        invalidate_on_commit()


# --- pings and presence -----------------------------------------------------------------


def _ignored(reason: str) -> dict:
    return {"ignored": reason, "venues": [], "coupons": [], "announcements": []}


def _presence_event(kind: str, presence: Presence, shop: int, at: datetime) -> None:
    emit(
        f"venue.{kind}",
        {"venue": presence.venue_id, "shop": shop, "user": presence.user_id, "at": iso_utc(at)},
        groups=[f"shop.{shop}"],
    )


def _issue(user, venue, trigger: str, now: datetime) -> list:
    if not venue.open_now(now):  # presence is tracked while closed; coupons are not issued
        return []
    if not venue.issues(trigger, now):  # no offer of this trigger runs here: no query
        return []
    return [
        coupon_body(coupon, now=now) for coupon in coupons_issue(user=user, venue_id=venue.id, trigger=trigger, now=now)
    ]


def _venue_row(presence: Presence | None, venue_id: int) -> dict:
    if presence is None or presence.state != Presence.State.INSIDE:
        return {"id": venue_id, "state": "outside", "entered_at": None, "dwelling": False}
    return {
        "id": venue_id,
        "state": "inside",
        "entered_at": iso_utc(presence.entered_at),
        "dwelling": presence.dwelled_at is not None,
    }


def _position_upsert(user_id: int, lat: float, lon: float, accuracy_m: float, at: datetime) -> None:
    """One statement (PostgreSQL and SQLite): the viewer's last position, inserted or
    replaced. Raw SQL because the ORM's bulk_create built it at a cost larger than the
    statement's on the ping path (bench/pings.py)."""
    n = names(Position)
    with connection.cursor() as cursor:
        cursor.execute(
            # Identifiers from the model's meta (creatorcommerce.sql); values are parameters.
            f"INSERT INTO {n.table} ({n.user_id}, {n.lat}, {n.lon}, {n.accuracy_m}, {n.at}) "  # noqa: S608
            f"VALUES (%s, %s, %s, %s, %s) ON CONFLICT ({n.user_id}) DO UPDATE SET {n.lat} = excluded.{n.lat}, "
            f"{n.lon} = excluded.{n.lon}, {n.accuracy_m} = excluded.{n.accuracy_m}, {n.at} = excluded.{n.at}",
            [user_id, lat, lon, accuracy_m, Position._meta.get_field("at").get_db_prep_value(at, connection)],
        )


def _presences_pinged(ids: list[int], at: datetime) -> None:
    """One UPDATE: the viewer is still inside these venues as of ``at`` (the ORM's
    bulk_update built a CASE per row for what is one value; bench/pings.py)."""
    n = names(Presence)
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {n.table} SET {n.last_ping_at} = %s WHERE {n.id} IN ({marks})",  # noqa: S608 - names from meta
            [Presence._meta.get_field("last_ping_at").get_db_prep_value(at, connection), *ids],
        )


def geo_ping(*, user, lat: float, lon: float, accuracy_m: float, at: datetime | None = None, now=None) -> dict:
    """One position report of a viewer: ``_ping``, answered again once with the fences
    reloaded if its transaction failed on integrity: a venue another process deleted
    since this one loaded its fences (at most ``GEO_FENCE_CACHE_CHECK_MS`` ago), or a
    presence a parallel ping of the same viewer created first."""
    try:
        return _ping(user=user, lat=lat, lon=lon, accuracy_m=accuracy_m, at=at, now=now)
    except IntegrityError:
        fence_cache.drop()
        return _ping(user=user, lat=lat, lon=lon, accuracy_m=accuracy_m, at=at, now=now)


def _ping(*, user, lat: float, lon: float, accuracy_m: float, at: datetime | None = None, now=None) -> dict:
    """One position report of a viewer (docs/geofences.md, "Pings"): stores their last
    position, moves their presence at every venue concerned (entered when the accuracy
    circle is entirely inside the fence, exited when entirely outside, nothing when it
    straddles the edge; dwelled after the venue's dwell time inside), emits the events and
    issues coupons in the same transaction, and answers what the viewer should see.

    Raises ``PingInvalid`` for out-of-range values or an ``at`` in the future,
    ``ConsentRequired`` without location consent (nothing stored). Stale or inaccurate
    pings are answered ``{"ignored": "stale"|"inaccurate"}`` and change nothing.
    """
    now = now or timezone.now()
    at = at or now
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise PingInvalid("lat must be within -90..90 and lon within -180..180.", code="invalid_coordinates")
    if not accuracy_m >= 0:
        raise PingInvalid("accuracy_m must be 0 or more.")
    if at > now + timedelta(seconds=settings.GEO_PING_MAX_SKEW_SECONDS):
        raise PingInvalid("'at' is in the future.", code="ping_in_future")
    stale = (now - at).total_seconds() > settings.GEO_PING_MAX_AGE_SECONDS
    inaccurate = accuracy_m > settings.GEO_PING_MAX_ACCURACY_M

    venues = fence_cache.venues()
    measured = {}  # venue id -> (venue, signed metres to its edge)
    for venue in venues:
        if venue.fence.rough_m(lon, lat) <= venue.reach_m * 1.05 + accuracy_m:
            measured[venue.id] = (venue, venue.fence.signed_m(lon, lat))

    with transaction.atomic():
        if not consent_granted_locked(user=user, kind="location"):
            raise ConsentRequired("Grant location consent first (PUT /api/v1/me/consents/location/).")
        if stale:
            return _ignored("stale")
        if inaccurate:
            return _ignored("inaccurate")
        _position_upsert(user.pk, lat, lon, accuracy_m, at)
        # Locked: the dwell beat changes presences too (each under its row lock); read
        # unlocked, a presence the beat is dwelling or exiting right now would be dwelled or
        # exited a second time by this ping once the beat commits.
        presences = {p.venue_id: p for p in rows_where(Presence, "user", user.pk, lock=True)}
        rows, coupons, changed_ids, touched = [], [], set(), []
        for venue_id in measured.keys() | {v for v, p in presences.items() if p.state == Presence.State.INSIDE}:
            venue, signed = measured.get(venue_id, (None, None))
            if venue is None:
                venue = fence_cache.get(venue_id)
                if venue is None:  # inactive or deleted since: left alone
                    continue
                signed = venue.fence.signed_m(lon, lat)
            presence = presences.get(venue_id)
            where = classify(signed, accuracy_m)
            changed = False
            if presence is not None and at < presence.last_ping_at:
                pass  # an older ping arriving late changes nothing
            elif where == "inside" and (presence is None or presence.state == Presence.State.OUTSIDE):
                if presence is None:
                    presence = Presence(user=user, venue_id=venue_id)
                    presences[venue_id] = presence
                presence.state = Presence.State.INSIDE
                presence.entered_at, presence.dwelled_at, presence.last_ping_at = at, None, at
                presence.save()
                _presence_event("entered", presence, venue.shop, at)
                coupons += _issue(user, venue, "enter", now)
                changed = True
            elif where == "outside" and presence is not None and presence.state == Presence.State.INSIDE:
                presence.state, presence.exited_at, presence.last_ping_at = Presence.State.OUTSIDE, at, at
                presence.save(update_fields=["state", "exited_at", "last_ping_at"])
                _presence_event("exited", presence, venue.shop, at)
                changed = True
            elif presence is not None and presence.state == Presence.State.INSIDE:
                presence.last_ping_at = at  # inside, or straddling the edge: still inside
                touched.append(presence)
            if (
                presence is not None
                and presence.state == Presence.State.INSIDE
                and presence.dwelled_at is None
                and (at - presence.entered_at).total_seconds() >= venue.dwell_seconds
            ):
                presence.dwelled_at = at
                presence.save(update_fields=["dwelled_at", "last_ping_at"])
                if presence in touched:
                    touched.remove(presence)
                _presence_event("dwelled", presence, venue.shop, at)
                coupons += _issue(user, venue, "dwell", now)
                changed = True
            if changed:
                changed_ids.add(venue_id)
            if changed or max(0.0, signed) <= NEARBY_M:
                rows.append(_venue_row(presence, venue_id))
        if touched:
            _presences_pinged([p.pk for p in touched], at)
    announcements = [
        {
            "venue": venue.id,
            "name": venue.name,
            "text": venue.announcement,
            "starts_at": iso_utc(venue.event_starts_at),
            "distance_m": round(max(0.0, signed), 1),
        }
        for venue, signed in measured.values()
        if venue.announces(now) and max(0.0, signed) <= venue.announce_radius_m
    ]
    rows.sort(key=lambda row: row["id"])
    return {"venues": rows, "coupons": coupons, "announcements": announcements}


def presence_beat(*, now: datetime | None = None, batch: int = 500) -> dict:
    """The dwell beat (docs/geofences.md, "Dwell and the beat"): viewers inside who stopped
    pinging still dwell. A viewer counts as inside until ``GEO_PRESENCE_SILENT_SECONDS``
    after their last ping; past that the beat exits them (``venue.exited`` at the beat's
    time). Each due presence is changed in its own transaction, with its event and coupons;
    rows another process holds are skipped (the next beat takes them)."""
    now = now or timezone.now()
    silent_since = now - timedelta(seconds=settings.GEO_PRESENCE_SILENT_SECONDS)
    dwelled = exited = 0
    # Inside, not dwelled, entered at least the shortest dwell time ago (the partial index
    # geofences_presence_dwell_due); each venue's own dwell time is checked here.
    candidates = (
        Presence.objects.filter(
            state=Presence.State.INSIDE, dwelled_at__isnull=True, entered_at__lte=now - timedelta(seconds=10)
        )
        .order_by("entered_at")
        .values_list("pk", "entered_at", "venue__dwell_seconds")[: batch * 4]
    )
    due = [pk for pk, entered_at, dwell in candidates if (now - entered_at).total_seconds() >= dwell][:batch]
    gone = list(
        Presence.objects.filter(state=Presence.State.INSIDE, last_ping_at__lt=silent_since)
        .order_by("last_ping_at", "pk")
        .values_list("pk", flat=True)[:batch]
    )
    for pk in dict.fromkeys(gone + due):
        with transaction.atomic():
            presence = (
                Presence.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("venue__location", "user")
                .filter(pk=pk, state=Presence.State.INSIDE)
                .first()
            )
            if presence is None:
                continue
            shop = presence.venue.location.shop_id
            if presence.last_ping_at < silent_since:
                presence.state, presence.exited_at = Presence.State.OUTSIDE, now
                presence.save(update_fields=["state", "exited_at"])
                _presence_event("exited", presence, shop, now)
                exited += 1
                continue
            venue = presence.venue
            if (
                not venue.is_active
                or presence.dwelled_at is not None
                or (now - presence.entered_at).total_seconds() < venue.dwell_seconds
            ):
                continue
            presence.dwelled_at = now
            presence.save(update_fields=["dwelled_at"])
            _presence_event("dwelled", presence, shop, now)
            cached = fence_cache.get(venue.pk)
            if cached is not None:
                _issue(presence.user, cached, "dwell", now)
            dwelled += 1
    return {"dwelled": dwelled, "exited": exited}


PRESENCE_EVENTS = ("venue.entered", "venue.exited", "venue.dwelled")


def location_erase(user) -> int:
    """Every stored position and presence of ``user`` (the location consent's eraser,
    registered in apps.py): the number of rows deleted. The viewer's presence events in
    the outbox stay (they are the durable log of what happened) but lose who it was:
    ``user`` becomes null (docs/geofences.md, "Consent")."""
    presences, _ = Presence.objects.filter(user_id=user.pk).delete()
    positions, _ = Position.objects.filter(user_id=user.pk).delete()
    events_redact(types=PRESENCE_EVENTS, match={"user": user.pk}, redact={"user": None})
    return presences + positions
