"""ICS feeds and the calendar opt-in (docs/calendars.md, "Feeds" and "Consent"): parsed by
two libraries (icalendar and vobject), one UID per drop across reschedule and cancel,
SEQUENCE rising, STATUS:CANCELLED, rotate and revoke making the old URL a 404."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import icalendar
import pytest
import vobject
from django.conf import settings
from django.test import Client

from apps.audit.models import AuditEntry
from apps.calendars.models import CalendarFeed
from apps.calendars.services import follow_set, preferences_parse, preferences_set, reminder_set
from apps.streams.services import stream_cancel, stream_update
from tests.factories import CreatorFactory

pytestmark = pytest.mark.django_db

START = datetime(2031, 3, 14, 13, 0, tzinfo=UTC)


def _opt_in(client) -> str:
    response = client.put("/api/v1/me/consents/calendar/", {"granted": True}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["feed_url"]


def _path(url: str) -> str:
    assert url.startswith(settings.SITE_URL)
    return url[len(settings.SITE_URL) :]


def _fetch(path: str, **headers):
    return Client().get(path, **headers)


def _parse(body: bytes) -> tuple[list, list]:
    """The VEVENTs as icalendar and as vobject read them."""
    cal = icalendar.Calendar.from_ical(body)
    other = vobject.readOne(body.decode())
    return list(cal.walk("VEVENT")), list(getattr(other, "vevent_list", []))


def _by_uid(events) -> dict:
    return {str(e["UID"]): e for e in events}


def test_opt_in_gives_a_private_feed_of_reminded_and_followed_drops(as_viewer, viewer, make_drop, shop):
    reminded = make_drop(starts_at=START, title="Spring drop")
    other_shop = CreatorFactory().shop
    make_drop(starts_at=START + timedelta(days=1), title="Followed drop", in_shop=other_shop)
    make_drop(starts_at=START + timedelta(days=2), title="Nothing to do with me", in_shop=CreatorFactory().shop)
    preferences_set(
        user=viewer,
        prefs=preferences_parse(
            time_zone="America/New_York", quiet_hours=None, windows=[], channels=["inapp"], lead_minutes=45
        ),
    )
    reminder_set(user=viewer, stream=reminded)
    follow_set(user=viewer, shop=other_shop)

    url = _opt_in(as_viewer)
    assert as_viewer.get("/api/v1/me/calendar-feed/").json() == {"feed_url": url}
    response = _fetch(_path(url))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Cache-Control"] == "private, max-age=60"
    assert response["ETag"]
    events, vevents = _parse(response.content)
    assert [str(e["SUMMARY"]) for e in events] == ["Spring drop", "Followed drop"]
    assert sorted(v.uid.value for v in vevents) == sorted(str(e["UID"]) for e in events)

    event = _by_uid(events)[f"{reminded.uid}@drops.creatorcommerce"]
    assert event.decoded("DTSTART") == START and event.decoded("DTSTART").utcoffset() == timedelta(0)
    assert event.decoded("DTEND") == START + timedelta(hours=1)  # no end: an hour
    assert "DTSTAMP" in event and int(event["SEQUENCE"]) == 0 and str(event["STATUS"]) == "CONFIRMED"
    assert str(event["URL"]) == f"{settings.SITE_URL}/streams/{reminded.pk}/"
    (alarm,) = event.walk("VALARM")
    assert alarm.decoded("TRIGGER") == timedelta(minutes=-45) and str(alarm["ACTION"]) == "DISPLAY"
    assert b"TRIGGER:-PT45M" in response.content
    assert b"X-PUBLISHED-TTL:PT15M" in response.content and b"REFRESH-INTERVAL;VALUE=DURATION:PT15M" in response.content
    vevent = next(v for v in vevents if v.uid.value == str(event["UID"]))
    assert vevent.dtstart.value == START and vevent.summary.value == "Spring drop"
    assert vevent.valarm.trigger.value == timedelta(minutes=-45)


def test_a_drop_keeps_its_uid_when_rescheduled_and_cancelled(as_viewer, viewer, make_drop, shop):
    drop = make_drop(starts_at=START, title="Drop")
    follow_set(user=viewer, shop=shop)
    private = _path(_opt_in(as_viewer))
    public = f"/calendars/shops/{shop.slug}.ics"
    uid = f"{drop.uid}@drops.creatorcommerce"

    def event(path):
        response = _fetch(path)
        assert response.status_code == 200
        events, vevents = _parse(response.content)
        assert [v.uid.value for v in vevents] == [uid]
        return _by_uid(events)[uid], vevents[0], response

    first, _, response = event(public)
    assert int(first["SEQUENCE"]) == 0
    assert response["Cache-Control"] == "public, max-age=300" and not first.walk("VALARM")
    etag = response["ETag"]
    assert _fetch(public, HTTP_IF_NONE_MATCH=etag).status_code == 304

    moved = START + timedelta(days=1, hours=2)
    drop = stream_update(stream=drop, changes={"starts_at": moved, "title": "Drop, moved"})
    for path in (public, private):
        again, vevent, response = event(path)
        assert again.decoded("DTSTART") == moved and str(again["SUMMARY"]) == "Drop, moved"
        assert int(again["SEQUENCE"]) == 1 and int(vevent.sequence.value) == 1
    assert response["ETag"] != etag
    assert _fetch(public, HTTP_IF_NONE_MATCH=etag).status_code == 200  # a changed feed is sent again

    stream_cancel(stream=drop)
    for path in (public, private):
        cancelled, vevent, _ = event(path)
        assert str(cancelled["STATUS"]) == "CANCELLED" and vevent.status.value == "CANCELLED"
        assert int(cancelled["SEQUENCE"]) == 2
        assert not cancelled.walk("VALARM")


def test_a_shop_feed_has_only_its_own_drops(make_drop, shop):
    mine = make_drop(starts_at=START, title="Mine")
    make_drop(starts_at=START, title="Theirs", in_shop=CreatorFactory().shop)
    response = _fetch(f"/calendars/shops/{shop.slug}.ics")
    events, _ = _parse(response.content)
    assert [str(e["UID"]) for e in events] == [f"{mine.uid}@drops.creatorcommerce"]
    assert _fetch("/calendars/shops/no-such-shop.ics").status_code == 404


def test_rotate_revoke_and_bad_tokens(as_viewer, viewer):
    assert as_viewer.get("/api/v1/me/calendar-feed/").json()["code"] == "calendar_consent_required"
    assert as_viewer.post("/api/v1/me/calendar-feed/").status_code == 409
    old = _path(_opt_in(as_viewer))
    assert _opt_in(as_viewer) == settings.SITE_URL + old  # granting again keeps the feed
    token = old.rsplit("/", 1)[1].removesuffix(".ics")
    feed = CalendarFeed.objects.get(user=viewer)
    assert feed.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in str(feed.__dict__)

    rotated = as_viewer.post("/api/v1/me/calendar-feed/")
    assert rotated.status_code == 200
    new = _path(rotated.json()["feed_url"])
    assert new != old and _fetch(old).status_code == 404 and _fetch(new).status_code == 200
    assert AuditEntry.objects.filter(action="calendar_feed.rotated", actor=viewer).count() == 1

    revoked = as_viewer.put("/api/v1/me/consents/calendar/", {"granted": False}, format="json")
    assert revoked.status_code == 200 and revoked.json()["deleted"] == 1
    assert _fetch(new).status_code == 404 and not CalendarFeed.objects.exists()
    assert as_viewer.get("/api/v1/me/calendar-feed/").status_code == 409
    kinds = {c["kind"]: c["granted"] for c in as_viewer.get("/api/v1/me/consents/").json()}
    assert kinds == {"location": False, "calendar": False}
    actions = list(AuditEntry.objects.filter(actor=viewer).order_by("pk").values_list("action", flat=True))
    assert actions == ["consent.granted", "calendar_feed.rotated", "consent.revoked"]

    for bad in ("x", "A" * 43, "../../etc/passwd", "A" * 500, "%C3%A9" * 20):
        assert _fetch(f"/calendars/{bad}.ics").status_code == 404
    assert _fetch("/calendars/%00.ics").status_code == 400  # NUL: refused before any view (docs/operations.md)


def test_consents_list_both_kinds(as_viewer):
    _opt_in(as_viewer)
    listed = {c["kind"]: c["granted"] for c in as_viewer.get("/api/v1/me/consents/").json()}
    assert listed == {"location": False, "calendar": True}


def test_follows_are_audited(viewer, shop):
    from apps.calendars.services import follow_delete

    follow_set(user=viewer, shop=shop)
    follow_delete(user=viewer, shop=shop)
    actions = list(AuditEntry.objects.filter(actor=viewer).order_by("pk").values_list("action", flat=True))
    assert actions == ["follow.created", "follow.deleted"]
