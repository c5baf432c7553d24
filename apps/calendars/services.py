"""Writes of the calendars app (docs/calendars.md): preferences, follows, reminders and
their recomputation, the dispatcher that sends due reminders once per viewer, drop and
channel, and the private feeds' tokens."""

from __future__ import annotations

import itertools
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import time_zone_names
from apps.audit.services import audit_record
from apps.consents.selectors import consent_granted_locked
from apps.streams.models import Stream
from creatorcommerce.fields import iso_utc
from creatorcommerce.spine.events import emit

from .exceptions import CalendarConsentRequired, InvalidPreferences, NotificationNotFound, StreamNotScheduled
from .feeds import feed_token, token_hash
from .models import CalendarFeed, Channel, Delivery, Follow, Notification, Preference, Reminder, Window
from .selectors import ViewerSettings, preferences_body, viewer_settings, viewers_settings
from .windows import DAY_MINUTES, Availability, schedule, zone

log = logging.getLogger(__name__)

MAX_LEAD_MINUTES = 7 * 24 * 60
MAX_WINDOWS = 7 * 24  # a window an hour would be plenty
MAX_EMAIL_ATTEMPTS = 5
# A due reminder still goes out while its drop is scheduled or live, until this long after
# its start (a lead of 0 is due at the start itself; a beat may run late); then it is missed.
LATE_GRACE = timedelta(minutes=10)
SENDABLE = (Stream.Status.SCHEDULED, Stream.Status.LIVE)

# -- preferences ------------------------------------------------------------------------------

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_time(value, *, field: str, allow_end_of_day: bool = False) -> int:
    """ "HH:MM" (00:00-23:59, and "24:00" where ``allow_end_of_day``) as minutes since
    midnight; anything else is ``invalid_time``."""
    if allow_end_of_day and value == "24:00":
        return DAY_MINUTES
    match = _TIME.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidPreferences(
            f'{field}: a time is "HH:MM" (00:00 to 23:59{", or 24:00 for an end" if allow_end_of_day else ""}).',
            code="invalid_time",
            field=field,
        )
    return int(match[1]) * 60 + int(match[2])


@dataclass(frozen=True)
class PreferencesInput:
    """Preferences parsed and checked (``preferences_parse``), ready to save."""

    time_zone: str
    quiet: tuple[int, int] | None
    windows: tuple[tuple[int, int, int], ...]
    channels: tuple[str, ...]
    lead_minutes: int


def preferences_parse(*, time_zone, quiet_hours, windows, channels, lead_minutes) -> PreferencesInput:
    """Check preferences as the API gives them; the first broken rule raises
    ``InvalidPreferences`` with its code (docs/calendars.md, "Errors")."""
    if not isinstance(time_zone, str) or time_zone not in time_zone_names():
        raise InvalidPreferences(
            "time_zone: use an IANA name such as Europe/Berlin or America/New_York.",
            code="invalid_time_zone",
            field="time_zone",
        )
    quiet = None
    if quiet_hours is not None:
        if not isinstance(quiet_hours, dict) or set(quiet_hours) != {"start", "end"}:
            raise InvalidPreferences(
                'quiet_hours: {"start": "HH:MM", "end": "HH:MM"} or null.', code="invalid_time", field="quiet_hours"
            )
        quiet = (
            parse_time(quiet_hours["start"], field="quiet_hours.start"),
            parse_time(quiet_hours["end"], field="quiet_hours.end"),
        )
        if quiet[0] == quiet[1]:
            raise InvalidPreferences(
                "quiet_hours: start and end are the same time (no quiet hours: null).",
                code="invalid_quiet_hours",
                field="quiet_hours",
            )
    if not isinstance(windows, list) or len(windows) > MAX_WINDOWS:
        raise InvalidPreferences(
            f"windows: a list of at most {MAX_WINDOWS} windows.", code="invalid_window", field="windows"
        )
    parsed = []
    for index, window in enumerate(windows):
        where = f"windows[{index}]"
        if not isinstance(window, dict) or set(window) != {"weekday", "start", "end"}:
            raise InvalidPreferences(
                f'{where}: {{"weekday": 0-6, "start": "HH:MM", "end": "HH:MM"}}.', code="invalid_window", field=where
            )
        weekday = window["weekday"]
        if type(weekday) is not int or not 0 <= weekday <= 6:
            raise InvalidPreferences(
                f"{where}.weekday: 0 (Monday) to 6 (Sunday).", code="invalid_window", field=f"{where}.weekday"
            )
        start = parse_time(window["start"], field=f"{where}.start")
        end = parse_time(window["end"], field=f"{where}.end", allow_end_of_day=True)
        if start >= end:
            raise InvalidPreferences(
                f"{where}: a window ends after it starts, on the same day (24:00 for midnight).",
                code="invalid_window",
                field=where,
            )
        parsed.append((weekday, start, end))
    parsed.sort()
    for before, after in itertools.pairwise(parsed):
        if before[0] == after[0] and after[1] < before[2]:
            raise InvalidPreferences(
                "windows: two windows of the same day overlap.", code="overlapping_windows", field="windows"
            )
    if not isinstance(channels, list) or any(c not in Channel.values for c in channels):
        raise InvalidPreferences(
            f"channels: a list of {', '.join(Channel.values)}.", code="invalid_channel", field="channels"
        )
    if type(lead_minutes) is not int or not 0 <= lead_minutes <= MAX_LEAD_MINUTES:
        raise InvalidPreferences(
            f"lead_minutes: 0 to {MAX_LEAD_MINUTES}.", code="invalid_lead_minutes", field="lead_minutes"
        )
    return PreferencesInput(
        time_zone=time_zone,
        quiet=quiet,
        windows=tuple(parsed),
        channels=tuple(dict.fromkeys(channels)),
        lead_minutes=lead_minutes,
    )


@dataclass(frozen=True)
class PreferencesOutcome:
    settings: ViewerSettings
    changed: list[str]  # the keys that changed
    recomputed: int  # the viewer's reminders whose deliver_at or status changed


def preferences_set(*, user, prefs: PreferencesInput, now: datetime | None = None) -> PreferencesOutcome:
    """Replace ``user``'s preferences with ``prefs`` (parsed by ``preferences_parse``), in one
    transaction: the row and windows, an audit entry ``preferences.updated`` with the values
    before and after (so any change can be put back), ``preferences.updated`` on the spine,
    and the viewer's pending reminders recomputed. Saving the values they have already (or,
    never having saved, the defaults) writes nothing."""
    now = now or timezone.now()
    wanted = ViewerSettings(
        user_id=user.pk,
        availability=Availability(time_zone=prefs.time_zone, quiet=prefs.quiet, windows=prefs.windows),
        channels=prefs.channels,
        lead_minutes=prefs.lead_minutes,
        saved=True,
    )
    after = preferences_body(wanted)
    with transaction.atomic():
        # Lock the user row: two saves of one viewer's preferences apply one after the other.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        current = viewer_settings(user=user)
        before = preferences_body(current)
        changed = [key for key in after if after[key] != before[key]]
        if not changed:
            return PreferencesOutcome(settings=current, changed=[], recomputed=0)
        pref, _ = Preference.objects.update_or_create(
            user_id=user.pk,
            defaults={
                "time_zone": prefs.time_zone,
                "quiet_start": prefs.quiet[0] if prefs.quiet else None,
                "quiet_end": prefs.quiet[1] if prefs.quiet else None,
                "channels": list(prefs.channels),
                "lead_minutes": prefs.lead_minutes,
                "updated_at": now,
            },
        )
        Window.objects.filter(user_id=user.pk).delete()
        Window.objects.bulk_create(
            [Window(user_id=user.pk, weekday=w, start=start, end=end) for w, start, end in prefs.windows]
        )
        audit_record(actor=user, action="preferences.updated", obj=pref, details={"before": before, "after": after})
        emit("preferences.updated", {"user": user.pk, "changed": changed}, groups=[])
        recomputed = _recompute(
            Reminder.objects.filter(user_id=user.pk, status__in=Reminder.PENDING), now=now, known={user.pk: wanted}
        )
    return PreferencesOutcome(settings=wanted, changed=changed, recomputed=recomputed)


# -- follows ----------------------------------------------------------------------------------


def follow_set(*, user, shop, now: datetime | None = None) -> tuple[Follow, bool]:
    """``user`` follows ``shop`` (again: nothing changes). When new: an audit entry
    ``follow.created`` and ``shop.followed``."""
    with transaction.atomic():
        follow, created = Follow.objects.get_or_create(
            user_id=user.pk, shop=shop, defaults={"created_at": now or timezone.now()}
        )
        if created:
            audit_record(actor=user, action="follow.created", obj=shop, details={"shop": shop.slug})
            emit("shop.followed", {"user": user.pk, "shop": shop.pk}, groups=[])
    return follow, created


def follow_delete(*, user, shop) -> bool:
    """``user`` stops following ``shop`` (an audit entry ``follow.deleted`` and
    ``shop.unfollowed``); False if they did not follow it."""
    with transaction.atomic():
        deleted, _ = Follow.objects.filter(user_id=user.pk, shop=shop).delete()
        if deleted:
            audit_record(actor=user, action="follow.deleted", obj=shop, details={"shop": shop.slug})
            emit("shop.unfollowed", {"user": user.pk, "shop": shop.pk}, groups=[])
    return bool(deleted)


# -- reminders --------------------------------------------------------------------------------


def _reminder_event(event_type: str, reminder: Reminder) -> None:
    payload = {"reminder": reminder.pk, "user": reminder.user_id, "stream": reminder.stream_id}
    if event_type == "reminder.set":
        payload |= {
            "status": reminder.status,
            "starts_at": iso_utc(reminder.starts_at),
            "deliver_at": iso_utc(reminder.deliver_at) if reminder.deliver_at else None,
            "channels": list(reminder.channels),
        }
    elif event_type == "reminder.sent":
        payload["channels"] = list(reminder.channels)
    emit(event_type, payload, groups=[])


def reminder_set(*, user, stream: Stream, now: datetime | None = None) -> tuple[Reminder, bool]:
    """``user``'s reminder for ``stream`` (one per viewer and drop): the existing one, or a
    new one with ``deliver_at`` computed from their preferences (``windows.schedule``) and
    ``reminder.set``. Only for a drop that is scheduled and has not started
    (StreamNotScheduled)."""
    now = now or timezone.now()
    with transaction.atomic():
        # Lock the stream: a move or a cancellation of the drop waits for this reminder and
        # then recomputes or cancels it too (handlers.py), or this sees it already.
        locked = Stream.objects.select_for_update().filter(pk=stream.pk).first()
        existing = Reminder.objects.filter(user_id=user.pk, stream_id=stream.pk).first()
        if existing is not None:
            return existing, False
        if locked is None or locked.status != Stream.Status.SCHEDULED or locked.starts_at <= now:
            raise StreamNotScheduled()
        settings_ = viewer_settings(user=user)
        plan = schedule(
            starts_at=locked.starts_at,
            lead_minutes=settings_.lead_minutes,
            availability=settings_.availability,
            now=now,
        )
        reminder = Reminder.objects.create(
            user_id=user.pk,
            stream=locked,
            channels=list(settings_.channels),
            starts_at=locked.starts_at,
            deliver_at=plan.deliver_at,
            status=plan.status,
            created_at=now,
        )
        _reminder_event("reminder.set", reminder)
    return reminder, True


def reminder_delete(*, user_id: int, stream_id: int) -> bool:
    """Remove the viewer's reminder for the drop (the API's DELETE and the stop link):
    e-mails of it not sent yet are stopped; emits ``reminder.removed``. False if there was
    none."""
    with transaction.atomic():
        reminder = Reminder.objects.select_for_update().filter(user_id=user_id, stream_id=stream_id).first()
        if reminder is None:
            return False
        Delivery.objects.filter(reminder=reminder, status=Delivery.Status.PENDING).update(
            status=Delivery.Status.STOPPED
        )
        _reminder_event("reminder.removed", reminder)
        reminder.delete()
    return True


def _recompute(reminders, *, now: datetime, known: dict[int, ViewerSettings] | None = None) -> int:
    """Recompute ``deliver_at`` and status of ``reminders`` (a queryset of pending ones,
    locked here) from their drop's time and their viewer's settings; emits ``reminder.set``
    for each that changed. Inside a transaction."""
    # The reminders' rows only (``of``): locking the joined streams too would take them in
    # another order than a parallel recompute and deadlock (and queue behind creators).
    rows = list(reminders.select_for_update(of=("self",)).select_related("stream").order_by("pk"))
    if not rows:
        return 0
    found = dict(known or {})
    missing = {r.user_id for r in rows} - set(found)
    if missing:
        found |= viewers_settings(user_ids=missing)
    changed = 0
    for reminder in rows:
        viewer = found[reminder.user_id]
        stream = reminder.stream
        if stream.status != Stream.Status.SCHEDULED:
            continue  # live, ended or cancelled: the dispatcher or the cancel handler decides
        plan = schedule(
            starts_at=stream.starts_at,
            lead_minutes=viewer.lead_minutes,
            availability=viewer.availability,
            now=now,
        )
        new = (stream.starts_at, plan.deliver_at, plan.status, list(viewer.channels))
        if new == (reminder.starts_at, reminder.deliver_at, reminder.status, reminder.channels):
            continue
        reminder.starts_at, reminder.deliver_at, reminder.status, reminder.channels = new
        reminder.save(update_fields=["starts_at", "deliver_at", "status", "channels"])
        _reminder_event("reminder.set", reminder)
        changed += 1
    return changed


def reminders_follow_stream(*, stream_id: int, now: datetime | None = None) -> int:
    """The drop moved (or changed): recompute its pending reminders. Reminders already sent
    stay sent (docs/calendars.md, "When a drop moves")."""
    with transaction.atomic():
        return _recompute(
            Reminder.objects.filter(stream_id=stream_id, status__in=Reminder.PENDING), now=now or timezone.now()
        )


def reminders_cancel_for_stream(*, stream_id: int) -> int:
    """The drop was cancelled: its pending reminders become ``cancelled`` and e-mails not
    sent yet are stopped. Returns how many reminders changed."""
    with transaction.atomic():
        rows = list(
            Reminder.objects.select_for_update().filter(stream_id=stream_id, status__in=Reminder.PENDING).order_by("pk")
        )
        Delivery.objects.filter(stream_id=stream_id, status=Delivery.Status.PENDING).update(
            status=Delivery.Status.STOPPED
        )
        for reminder in rows:
            reminder.status, reminder.deliver_at = Reminder.Status.CANCELLED, None
            reminder.save(update_fields=["status", "deliver_at"])
            _reminder_event("reminder.set", reminder)
    return len(rows)


# -- private feeds ----------------------------------------------------------------------------


def _feed_issue(user, *, now: datetime, feed: CalendarFeed | None = None) -> CalendarFeed:
    nonce = secrets.token_hex(16)
    token = feed_token(user_id=user.pk, nonce=nonce)
    if feed is None:
        return CalendarFeed.objects.create(user_id=user.pk, nonce=nonce, token_hash=token_hash(token), created_at=now)
    feed.nonce, feed.token_hash, feed.created_at = nonce, token_hash(token), now
    feed.save(update_fields=["nonce", "token_hash", "created_at"])
    return feed


def feed_on_grant(user, *, now: datetime | None = None) -> dict:
    """The granter of calendar consent (``apps.consents.registry``; inside ``consent_set``'s
    transaction): the viewer's private feed, issued if they have none. Returns
    ``{"feed_url"}`` for the consent API's answer."""
    from .feeds import feed_url

    feed = CalendarFeed.objects.select_for_update().filter(user_id=user.pk).first()
    if feed is None:
        feed = _feed_issue(user, now=now or timezone.now())
    return {"feed_url": feed_url(feed)}


def feed_erase(user) -> int:
    """The eraser of calendar consent: the viewer's feed token is deleted, so its URL answers
    404 from then on. Returns the rows deleted (0 or 1)."""
    deleted, _ = CalendarFeed.objects.filter(user_id=user.pk).delete()
    return deleted


def feed_get(*, user, now: datetime | None = None) -> CalendarFeed:
    """The viewer's feed (issued now if calendar consent was granted before feeds existed);
    ``CalendarConsentRequired`` without calendar consent."""
    with transaction.atomic():
        if not consent_granted_locked(user=user, kind="calendar"):
            raise CalendarConsentRequired()
        feed = CalendarFeed.objects.select_for_update().filter(user_id=user.pk).first()
        return feed or _feed_issue(user, now=now or timezone.now())


def feed_rotate(*, user, now: datetime | None = None) -> CalendarFeed:
    """A new token for the viewer's feed; the old URL answers 404 from the commit on. An
    audit entry ``calendar_feed.rotated``. ``CalendarConsentRequired`` without calendar
    consent."""
    now = now or timezone.now()
    with transaction.atomic():
        if not consent_granted_locked(user=user, kind="calendar"):
            raise CalendarConsentRequired()
        feed = CalendarFeed.objects.select_for_update().filter(user_id=user.pk).first()
        feed = _feed_issue(user, now=now, feed=feed)
        audit_record(actor=user, action="calendar_feed.rotated", obj=feed, details={})
    return feed


# -- stop links -------------------------------------------------------------------------------

STOP_SALT = "apps.calendars.stop"


def stop_token(*, user_id: int, stream_id: int) -> str:
    """The signed token of a reminder's one-click stop link (docs/calendars.md, "Stop links"):
    it names the viewer and the drop, so it stops that viewer's reminder for that drop."""
    return signing.dumps({"u": user_id, "s": stream_id}, salt=STOP_SALT, compress=False)


def stop_token_read(token: str) -> tuple[int, int] | None:
    """``(user_id, stream_id)`` of a valid stop token, None for anything else."""
    try:
        data = signing.loads(token, salt=STOP_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or type(data.get("u")) is not int or type(data.get("s")) is not int:
        return None
    return data["u"], data["s"]


def stop_url(*, user_id: int, stream_id: int) -> str:
    return settings.SITE_URL + reverse("calendars-stop", args=[stop_token(user_id=user_id, stream_id=stream_id)])


# -- sending ----------------------------------------------------------------------------------


def _message(reminder: Reminder, viewer: ViewerSettings) -> dict:
    stream = reminder.stream
    local = stream.starts_at.astimezone(zone(viewer.availability.time_zone))
    when = f"{local:%A %d %B, %H:%M} ({viewer.availability.time_zone})"
    return {
        "title": f"Starting soon: {stream.title}",
        "body": f"{stream.shop.name} goes live {when}.",
        "url": settings.SITE_URL + reverse("stream", args=[stream.pk]),
        "stop_url": stop_url(user_id=reminder.user_id, stream_id=stream.pk),
    }


def reminder_claim(*, reminder_id: int, now: datetime | None = None) -> str:
    """Take one due reminder, in one transaction: lock it (only if still ``scheduled`` and
    due), write a delivery row per channel (unique per viewer, drop and channel: a channel
    already delivered for this drop is skipped), the in-app notification with its row,
    mark the reminder ``sent`` and emit ``reminder.sent``. E-mails leave afterwards
    (``delivery_send``). Returns "sent", "missed" (the drop ended, was cancelled, or started
    more than LATE_GRACE ago) or "skipped" (someone else took it, or it changed; a reminder
    whose drop moved since it was computed is recomputed instead, and sent when due)."""
    now = now or timezone.now()
    with transaction.atomic():
        reminder = (
            Reminder.objects.select_for_update(of=("self",))
            .select_related("stream", "stream__shop")
            .filter(pk=reminder_id, status=Reminder.Status.SCHEDULED, deliver_at__lte=now)
            .first()
        )
        if reminder is None:
            return "skipped"
        stream = reminder.stream
        if reminder.starts_at != stream.starts_at:
            # The drop moved and its stream.updated handler has not run yet: recompute now
            # rather than send for the old time (a later deliver_at is not due yet).
            _recompute(Reminder.objects.filter(pk=reminder.pk), now=now)
            return "skipped"
        if stream.status not in SENDABLE or now > stream.starts_at + LATE_GRACE:
            reminder.status, reminder.deliver_at = Reminder.Status.MISSED, None
            reminder.save(update_fields=["status", "deliver_at"])
            _reminder_event("reminder.set", reminder)
            return "missed"
        viewer = viewers_settings(user_ids=[reminder.user_id])[reminder.user_id]
        message = _message(reminder, viewer)
        done = set(
            Delivery.objects.filter(
                user_id=reminder.user_id, stream_id=stream.pk, channel__in=reminder.channels
            ).values_list("channel", flat=True)
        )
        for channel in reminder.channels:
            if channel in done:
                continue
            if channel == Channel.INAPP:
                Notification.objects.create(
                    user_id=reminder.user_id, kind=Notification.Kind.REMINDER, stream=stream, created_at=now, **message
                )
                status, sent_at = Delivery.Status.SENT, now
            else:
                status, sent_at = Delivery.Status.PENDING, None
            Delivery.objects.create(
                user_id=reminder.user_id,
                stream=stream,
                reminder=reminder,
                channel=channel,
                status=status,
                created_at=now,
                sent_at=sent_at,
            )
        reminder.status, reminder.sent_at = Reminder.Status.SENT, now
        reminder.save(update_fields=["status", "sent_at"])
        _reminder_event("reminder.sent", reminder)
    return "sent"


def delivery_send(*, delivery_id: int, now: datetime | None = None) -> str:
    """Send one pending e-mail delivery: claim it with a conditional UPDATE (``pending`` ->
    ``sending``; only one caller wins), send, mark it ``sent``. A send that raises puts it
    back to ``pending`` (``failed`` after MAX_EMAIL_ATTEMPTS) for the next beat. A process
    that dies between the send and the mark leaves it ``sending``: never sent twice. An
    e-mail still pending when its drop is over (started more than LATE_GRACE ago, ended or
    cancelled) is not sent late: ``failed``. Returns "sent", "skipped" or "failed"."""
    now = now or timezone.now()
    claimed = Delivery.objects.filter(
        pk=delivery_id, status=Delivery.Status.PENDING, channel=Channel.EMAIL, reminder__isnull=False
    ).update(status=Delivery.Status.SENDING, attempts=F("attempts") + 1, claimed_at=now)
    if not claimed:
        return "skipped"
    delivery = Delivery.objects.select_related("user", "reminder", "reminder__stream__shop").get(pk=delivery_id)
    try:
        reminder = delivery.reminder
        if reminder is None:  # stopped between the claim and here
            Delivery.objects.filter(pk=delivery_id).update(status=Delivery.Status.STOPPED)
            return "skipped"
        stream = reminder.stream
        if stream.status not in SENDABLE or now > stream.starts_at + LATE_GRACE:
            # A mail server that refused until after the drop: "starting soon" is wrong now.
            Delivery.objects.filter(pk=delivery_id).update(status=Delivery.Status.FAILED)
            log.info("reminder e-mail %s not sent: its drop started or ended meanwhile", delivery_id)
            return "failed"
        viewer = viewers_settings(user_ids=[reminder.user_id])[reminder.user_id]
        message = _message(reminder, viewer)
        email = EmailMultiAlternatives(
            subject=message["title"],
            body=f"{message['body']}\n\nWatch: {message['url']}\n\nStop this reminder: {message['stop_url']}\n",
            to=[delivery.user.email],
            headers={
                # RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs.
                "List-Unsubscribe": f"<{message['stop_url']}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
        email.send()
    except Exception:
        log.exception("reminder e-mail %s failed", delivery_id)
        give_up = delivery.attempts >= MAX_EMAIL_ATTEMPTS
        Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.SENDING).update(
            status=Delivery.Status.FAILED if give_up else Delivery.Status.PENDING
        )
        return "failed"
    Delivery.objects.filter(pk=delivery_id).update(status=Delivery.Status.SENT, sent_at=timezone.now())
    return "sent"


def reminders_dispatch(*, now: datetime | None = None, limit: int = 500) -> dict:
    """The beat (``tasks.dispatch_reminders``): claim every due reminder, then send every
    pending e-mail. Safe to run twice at once and to run again: each reminder is claimed
    once, each e-mail once (docs/calendars.md, "Sending")."""
    now = now or timezone.now()
    counts = {"sent": 0, "missed": 0, "skipped": 0, "emails": 0, "failed": 0}
    due = Reminder.objects.filter(status=Reminder.Status.SCHEDULED, deliver_at__lte=now).order_by("deliver_at", "pk")
    for reminder_id in list(due.values_list("pk", flat=True)[:limit]):
        counts[reminder_claim(reminder_id=reminder_id, now=now)] += 1
    pending = Delivery.objects.filter(status=Delivery.Status.PENDING, channel=Channel.EMAIL).order_by("pk")
    for delivery_id in list(pending.values_list("pk", flat=True)[:limit]):
        outcome = delivery_send(delivery_id=delivery_id, now=now)
        if outcome == "sent":
            counts["emails"] += 1
        elif outcome == "failed":
            counts["failed"] += 1
    return counts


# -- notifications ----------------------------------------------------------------------------


def notification_mark_read(*, user, notification_id: int, now: datetime | None = None) -> Notification:
    """Mark one of the viewer's notifications read (again: the first time is kept)."""
    notification = Notification.objects.filter(pk=notification_id, user_id=user.pk).first()
    if notification is None:
        raise NotificationNotFound()
    if notification.read_at is None:
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now or timezone.now())
        notification.refresh_from_db(fields=["read_at"])
    return notification
