"""Reads of the calendars app (docs/calendars.md): preferences as the API shows them, the
availability the delivery rule and the audience heatmap need (one viewer or many), follows,
reminders and notifications."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from apps.accounts.models import Shop
from creatorcommerce.fields import iso_utc

from .exceptions import ShopNotFound
from .models import Channel, Follow, Notification, Preference, Reminder, Window
from .windows import Availability

# What a viewer who never saved preferences gets: their account's time zone, no quiet hours,
# no windows (any time is free), in-app messages, 15 minutes ahead.
DEFAULT_CHANNELS = (Channel.INAPP.value,)
DEFAULT_LEAD_MINUTES = 15


def hhmm(minutes: int) -> str:
    """Minutes since midnight as "HH:MM" (1440 is "24:00", a window's end)."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class ViewerSettings:
    """What a viewer's reminders are computed from."""

    user_id: int
    availability: Availability
    channels: tuple[str, ...]
    lead_minutes: int
    saved: bool  # False: the defaults


def _settings(user_id: int, user_time_zone: str, pref: Preference | None, windows) -> ViewerSettings:
    if pref is None:
        return ViewerSettings(
            user_id=user_id,
            availability=Availability(time_zone=user_time_zone or "UTC"),
            channels=DEFAULT_CHANNELS,
            lead_minutes=DEFAULT_LEAD_MINUTES,
            saved=False,
        )
    quiet = (pref.quiet_start, pref.quiet_end) if pref.quiet_start is not None else None
    return ViewerSettings(
        user_id=user_id,
        availability=Availability(
            time_zone=pref.time_zone, quiet=quiet, windows=tuple((w.weekday, w.start, w.end) for w in windows)
        ),
        channels=tuple(pref.channels),
        lead_minutes=pref.lead_minutes,
        saved=True,
    )


def viewer_settings(*, user) -> ViewerSettings:
    pref = Preference.objects.filter(user_id=user.pk).first()
    windows = list(Window.objects.filter(user_id=user.pk)) if pref else []
    return _settings(user.pk, user.time_zone, pref, windows)


def viewers_settings(*, user_ids: Iterable[int]) -> dict[int, ViewerSettings]:
    """``viewer_settings`` of many viewers in three queries (a drop's reminders, a shop's
    followers)."""
    from django.contrib.auth import get_user_model

    ids = list(set(user_ids))
    zones = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "time_zone"))
    prefs = {p.user_id: p for p in Preference.objects.filter(user_id__in=ids)}
    windows = defaultdict(list)
    for window in Window.objects.filter(user_id__in=list(prefs)):
        windows[window.user_id].append(window)
    return {uid: _settings(uid, zones[uid], prefs.get(uid), windows[uid]) for uid in ids if uid in zones}


def followers_settings(*, shop) -> list[ViewerSettings]:
    """The settings of every follower of ``shop`` (for the audience heatmap)."""
    ids = Follow.objects.filter(shop=shop).values_list("user_id", flat=True)
    found = viewers_settings(user_ids=ids)
    return [found[uid] for uid in sorted(found)]


def preferences_body(settings: ViewerSettings) -> dict:
    """``GET /api/v1/me/preferences/`` (docs/calendars.md)."""
    availability = settings.availability
    quiet = availability.quiet
    return {
        "time_zone": availability.time_zone,
        "quiet_hours": {"start": hhmm(quiet[0]), "end": hhmm(quiet[1])} if quiet else None,
        "windows": [
            {"weekday": weekday, "start": hhmm(start), "end": hhmm(end)}
            for weekday, start, end in sorted(availability.windows)
        ],
        "channels": list(settings.channels),
        "lead_minutes": settings.lead_minutes,
    }


def shop_by_slug(*, slug: str) -> Shop:
    shop = Shop.objects.filter(slug=slug).first()
    if shop is None:
        raise ShopNotFound()
    return shop


def follows_of(*, user) -> list[Follow]:
    return list(Follow.objects.filter(user_id=user.pk).select_related("shop"))


def reminder_body(reminder: Reminder) -> dict:
    """A reminder as the API shows it (docs/calendars.md)."""
    return {
        "stream": reminder.stream_id,
        "starts_at": iso_utc(reminder.starts_at),
        "deliver_at": iso_utc(reminder.deliver_at) if reminder.deliver_at else None,
        "channels": list(reminder.channels),
        "status": reminder.status,
    }


def reminders_of(*, user, limit: int = 500) -> list[Reminder]:
    """The viewer's reminders, soonest drop first."""
    return list(Reminder.objects.filter(user_id=user.pk).order_by("starts_at", "pk")[:limit])


def reminder_of(*, user, stream_id: int) -> Reminder | None:
    """The viewer's reminder of one drop, or None (the stream page's panel)."""
    if not getattr(user, "pk", None):
        return None
    return Reminder.objects.filter(user_id=user.pk, stream_id=stream_id).first()


def is_following(*, user, shop) -> bool:
    return bool(getattr(user, "pk", None)) and Follow.objects.filter(user_id=user.pk, shop=shop).exists()


def reminders_with_drops(*, user, limit: int = 500) -> list[Reminder]:
    """``reminders_of`` with each drop and its shop (the viewer's calendar page)."""
    return list(
        Reminder.objects.filter(user_id=user.pk).select_related("stream__shop").order_by("starts_at", "pk")[:limit]
    )


def notification_body(notification: Notification) -> dict:
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "stream": notification.stream_id,
        "title": notification.title,
        "body": notification.body,
        "url": notification.url,
        "stop_url": notification.stop_url or None,
        "created_at": iso_utc(notification.created_at),
        "read_at": iso_utc(notification.read_at) if notification.read_at else None,
    }


def notifications_of(*, user, limit: int = 200) -> list[Notification]:
    """The viewer's notifications, newest first."""
    return list(Notification.objects.filter(user_id=user.pk)[:limit])


def audience_heatmap(*, shop, week_start=None, now=None):
    """The shop's audience heatmap (``heatmap.heatmap``) in the zone of the shop's creator,
    for the week from ``week_start`` (a Monday; default: this week's, in that zone)."""
    from django.utils import timezone

    from .heatmap import heatmap, week_monday
    from .windows import zone

    time_zone = shop.owner.time_zone or "UTC"
    if week_start is None:
        week_start = (now or timezone.now()).astimezone(zone(time_zone)).date()
    followers = followers_settings(shop=shop)
    return heatmap(
        availabilities=[f.availability for f in followers], time_zone=time_zone, week_start=week_monday(week_start)
    )


def heatmap_body(result) -> dict:
    """``GET /api/v1/shops/{slug}/audience-availability/`` (docs/calendars.md)."""
    return {
        "time_zone": result.time_zone,
        "week_start": result.week_start.isoformat(),
        "followers": result.followers,
        "counts": result.counts,
        "missing_hours": [list(slot) for slot in result.missing],
    }
