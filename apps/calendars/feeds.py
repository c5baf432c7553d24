"""ICS feeds of drops (docs/calendars.md, "Feeds"): a viewer's private feed and each shop's
public one, built with the ``icalendar`` library.

Every drop is one VEVENT, whatever happens to it:

* ``UID`` is ``<Stream.uid>@drops.creatorcommerce``: the stream's UUID, given at creation and
  never changed, with a fixed domain part (not the site's host or the node's id, which an
  operator may change), so a calendar app keeps one event per drop for life;
* ``SEQUENCE`` is ``Stream.sequence``, which the streams services raise on every change of
  the title, start or end and on cancelling (docs/streams.md);
* ``STATUS`` is ``CANCELLED`` for a cancelled drop (it stays in the feeds), ``CONFIRMED``
  otherwise;
* ``DTSTART``/``DTEND`` in UTC; a drop without an end lasts ``DEFAULT_DURATION``;
* ``DTSTAMP`` is when the feed was generated (the feed is computed on every request);
* ``URL`` is the drop's page, absolute (``settings.SITE_URL``);
* the private feed adds a ``VALARM`` at the viewer's lead time (``TRIGGER:-PT<lead>M``) to
  drops that are not cancelled; the public feed has no alarms.

A feed lists drops that start at most ``PAST`` ago (any status), at most ``LIMIT`` of them,
soonest first.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils.crypto import salted_hmac
from icalendar import Alarm, Calendar, Event

from apps.streams.models import Stream

from .models import CalendarFeed, Follow, Reminder

UID_DOMAIN = "drops.creatorcommerce"
DEFAULT_DURATION = timedelta(hours=1)
PAST = timedelta(days=30)
LIMIT = 500
PRODID = "-//CreatorCommerce//Drops//EN"
# How often calendar apps that read these hints (Apple, Outlook) fetch the feed again.
REFRESH = timedelta(minutes=15)

TOKEN_SALT = "apps.calendars.feed"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


# -- tokens -----------------------------------------------------------------------------------


def feed_token(*, user_id: int, nonce: str) -> str:
    """The token of a private feed's URL: an HMAC (SHA-256, the server's ``SECRET_KEY``) of
    the viewer and the feed's random nonce, URL-safe base64 without padding (43 characters).
    Changing ``SECRET_KEY`` changes every feed URL."""
    digest = salted_hmac(TOKEN_SALT, f"{user_id}:{nonce}", algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def feed_url(feed: CalendarFeed) -> str:
    token = feed_token(user_id=feed.user_id, nonce=feed.nonce)
    return settings.SITE_URL + reverse("calendars-feed", args=[token])


def feed_by_token(token: str) -> CalendarFeed | None:
    """The feed a URL's token opens, or None (malformed, rotated, revoked, never issued)."""
    if not isinstance(token, str) or not _TOKEN.match(token):
        return None
    return CalendarFeed.objects.select_related("user").filter(token_hash=token_hash(token)).first()


# -- which drops ------------------------------------------------------------------------------


def _recent(queryset, now: datetime):
    return queryset.filter(starts_at__gte=now - PAST).select_related("shop").order_by("starts_at", "pk")[:LIMIT]


def viewer_drops(*, user, now: datetime) -> list[Stream]:
    """The drops of a viewer's private feed: those they set a reminder for and those of the
    shops they follow."""
    reminded = Reminder.objects.filter(user_id=user.pk).values("stream_id")
    followed = Follow.objects.filter(user_id=user.pk).values("shop_id")
    return list(_recent(Stream.objects.filter(Q(pk__in=reminded) | Q(shop_id__in=followed)), now))


def shop_drops(*, shop, now: datetime) -> list[Stream]:
    return list(_recent(Stream.objects.filter(shop=shop), now))


# -- the calendar -----------------------------------------------------------------------------


def event_uid(stream: Stream) -> str:
    return f"{stream.uid}@{UID_DOMAIN}"


def _stream_url(stream: Stream) -> str:
    return settings.SITE_URL + reverse("stream", args=[stream.pk])


def _end(stream: Stream) -> datetime:
    return stream.ends_at or stream.starts_at + DEFAULT_DURATION


def feed_etag(*, kind: str, drops: list[Stream], lead_minutes: int | None) -> str:
    """A strong validator of the feed's content except ``DTSTAMP`` (which is the time of the
    request): what each event shows, the alarm's lead, and the site's address."""
    parts = [kind, settings.SITE_URL, str(lead_minutes)]
    for s in drops:
        parts += [
            str(s.uid),
            str(s.pk),
            str(s.sequence),
            s.status,
            s.title,
            s.description,
            s.shop.name,
            s.starts_at.isoformat(),
            _end(s).isoformat(),
        ]
    return '"' + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32] + '"'


def build_calendar(*, name: str, drops: list[Stream], now: datetime, lead_minutes: int | None = None) -> bytes:
    """The ICS body: one VEVENT per drop (module docstring); a VALARM ``lead_minutes``
    before each drop that is not cancelled when ``lead_minutes`` is not None."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT15M")  # an X- property is text: the duration as RFC 5545 writes it
    stamp = now.astimezone(UTC).replace(microsecond=0)
    for stream in drops:
        event = Event()
        event.add("uid", event_uid(stream))
        event.add("dtstamp", stamp)
        event.add("dtstart", stream.starts_at.astimezone(UTC))
        event.add("dtend", _end(stream).astimezone(UTC))
        event.add("summary", stream.title)
        url = _stream_url(stream)
        description = f"{stream.shop.name}: {stream.description}".strip() if stream.description else stream.shop.name
        event.add("description", f"{description}\n{url}")
        event.add("url", url)
        event.add("sequence", stream.sequence)
        cancelled = stream.status == Stream.Status.CANCELLED
        event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
        event.add("transp", "TRANSPARENT")  # a drop does not make the viewer busy
        if lead_minutes is not None and not cancelled:
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", f"Starting soon: {stream.title}")
            alarm.add("trigger", timedelta(minutes=-lead_minutes))
            event.add_component(alarm)
        cal.add_component(event)
    return cal.to_ical()
