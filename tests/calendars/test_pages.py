"""The viewer's pages of the calendars app (docs/calendars.md, "In the browser"): the calendar
page ``/me/calendar/`` and the reminder panel of the stream page, rendered by the server in
the viewer's reminder zone. What the page's scripts do is walked in Chromium
(test_browser_calendar.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.test import Client

from apps.calendars.services import (
    follow_set,
    preferences_parse,
    preferences_set,
    reminder_set,
    reminders_cancel_for_stream,
)
from apps.consents.services import consent_set
from apps.streams.services import stream_cancel

pytestmark = pytest.mark.django_db

# 13:30Z on Wednesday 10 March 2027 is 08:30 in New York (EST): with a 60-minute lead the
# target is 07:30, inside quiet hours 22:00-08:00; with windows on Friday evenings and
# Saturday 10:00-12:00 the latest free minute is Saturday 6 March 11:59 (16:59Z), and without
# windows 21:59 the evening before (docs/calendars.md, "When a reminder goes out").
DROP_AT = datetime(2027, 3, 10, 13, 30, tzinfo=UTC)


def _ny_prefs(user, **overrides):
    values = {
        "time_zone": "America/New_York",
        "quiet_hours": {"start": "22:00", "end": "08:00"},
        "windows": [{"weekday": 4, "start": "18:00", "end": "24:00"}, {"weekday": 5, "start": "10:00", "end": "12:00"}],
        "channels": ["email", "inapp"],
        "lead_minutes": 60,
    } | overrides
    preferences_set(user=user, prefs=preferences_parse(**values))


@pytest.fixture
def browser_client(viewer):
    client = Client()
    client.force_login(viewer)
    return client


def test_the_calendar_page_needs_a_login():
    response = Client().get("/me/calendar/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/me/calendar/")


def test_a_new_viewer_sees_the_defaults_in_their_account_zone(browser_client, viewer):
    response = browser_client.get("/me/calendar/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<option value="America/New_York" selected>' in html
    assert "these are the defaults" in html
    assert 'id="pref-lead"' in html and 'value="15"' in html
    assert 'id="feed-on" role="switch">' in html  # not checked: no calendar consent
    assert 'id="feed-box" hidden' in html
    assert "No reminders yet" in html and "You follow no shop yet" in html
    assert 'href="/me/calendar/" aria-current="page">My calendar</a>' in html
    assert response["Cache-Control"].startswith("max-age=0")


def test_the_page_shows_preferences_reminders_follows_and_times_in_the_viewer_zone(
    browser_client, viewer, shop, make_drop
):
    _ny_prefs(viewer)
    now = datetime(2027, 3, 1, tzinfo=UTC)
    drop = make_drop(starts_at=DROP_AT, title="Spring sale")
    reminder, _ = reminder_set(user=viewer, stream=drop, now=now)
    assert reminder.deliver_at == datetime(2027, 3, 6, 16, 59, tzinfo=UTC)
    follow_set(user=viewer, shop=shop, now=now)
    html = browser_client.get("/me/calendar/").content.decode()
    assert "Times on this page are in <strong>America/New_York</strong>" in html
    assert 'id="pref-quiet-on" checked' in html
    assert 'id="pref-quiet-start" value="22:00"' in html and 'id="pref-quiet-end" value="08:00"' in html
    # A window until midnight shows "00:00" (a time input has no 24:00); the script sends 24:00.
    assert 'data-field="end" value="00:00"' in html and 'data-field="end" value="12:00"' in html
    assert 'name="channels" value="email" checked' in html
    assert f'href="/streams/{drop.pk}/">Spring sale</a>' in html
    assert 'starts <time datetime="2027-03-10T08:30:00-05:00">Wed 10 Mar, 08:30</time>' in html
    assert 'Reminder at <time datetime="2027-03-06T11:59:00-05:00">Sat 6 Mar, 11:59</time> · e-mail, in-app' in html
    assert f'data-stop="{drop.pk}"' in html
    assert f'data-unfollow="{shop.slug}"' in html and shop.name in html


def test_an_unschedulable_and_a_cancelled_reminder_say_why(browser_client, viewer, make_drop):
    # Windows entirely inside quiet hours: no minute is ever free.
    _ny_prefs(viewer, windows=[{"weekday": d, "start": "23:00", "end": "24:00"} for d in range(7)])
    now = datetime(2027, 3, 1, tzinfo=UTC)
    stuck = make_drop(starts_at=DROP_AT, title="Never fits")
    gone = make_drop(starts_at=DROP_AT, title="Called off")
    assert reminder_set(user=viewer, stream=stuck, now=now)[0].status == "unschedulable"
    reminder_set(user=viewer, stream=gone, now=now)
    stream_cancel(stream=gone)
    reminders_cancel_for_stream(stream_id=gone.pk)  # what the stream.cancelled handler does
    html = browser_client.get("/me/calendar/").content.decode()
    assert "there is no moment outside your quiet hours and inside your windows" in html
    assert "The drop was cancelled." in html


def test_an_opted_in_viewer_sees_their_private_feed_url(browser_client, viewer):
    url = consent_set(user=viewer, kind="calendar", granted=True).extra["feed_url"]
    html = browser_client.get("/me/calendar/").content.decode()
    assert f'id="feed-url" readonly value="{url}"' in html
    assert 'href="webcal://' + url.split("://", 1)[1] + '"' in html
    assert 'id="feed-on" role="switch" checked>' in html
    assert 'id="feed-box" hidden' not in html


def test_notifications_are_listed_with_unread_marked(browser_client, viewer, make_drop):
    from apps.calendars.models import Notification

    drop = make_drop(title="Tonight")
    Notification.objects.create(
        user=viewer, kind="reminder", stream=drop, title="Tonight starts soon", body="At 20:00.",
        url=f"/streams/{drop.pk}/", created_at=datetime(2027, 3, 10, 1, 0, tzinfo=UTC),
    )  # fmt: skip
    html = browser_client.get("/me/calendar/").content.decode()
    assert "Tonight starts soon" in html and "Tue 9 Mar, 20:00" in html  # 01:00Z in New York
    assert "cal-item notification unread" in html and "data-read=" in html


# -- the stream page's panel --------------------------------------------------------------------


def _panel_state(html: str) -> dict:
    start = html.index('<script id="remind-initial" type="application/json">') + len(
        '<script id="remind-initial" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_an_anonymous_viewer_gets_a_login_link_on_the_stream_page(client, drop):
    html = client.get(f"/streams/{drop.pk}/").content.decode()
    assert f'href="/accounts/login/?next=/streams/{drop.pk}/">Log in to get a reminder</a>' in html
    assert 'id="remind-toggle"' not in html
    assert _panel_state(html)["signed_in"] is False


def test_a_viewer_sees_their_reminder_and_follow_state_on_the_stream_page(browser_client, viewer, shop, drop):
    # No weekly windows: with Friday evening's and Saturday morning's, a reminder for a drop two
    # days ahead is "missed" on most days of the week (its last window before has closed), so
    # the test passed only when run on a Thursday or a Friday.
    _ny_prefs(viewer, windows=[])
    html = browser_client.get(f"/streams/{drop.pk}/").content.decode()
    assert 'id="remind-toggle" aria-pressed="false"' in html
    assert f'id="follow-toggle" aria-pressed="false">Follow {shop.name}</button>' in html
    state = _panel_state(html)
    assert state["time_zone"] == "America/New_York" and state["lead_minutes"] == 60
    assert state["reminder"] is None and state["following"] is False and state["shop"] == shop.slug

    reminder_set(user=viewer, stream=drop)
    follow_set(user=viewer, shop=shop)
    html = browser_client.get(f"/streams/{drop.pk}/").content.decode()
    assert 'id="remind-toggle" aria-pressed="true"' in html and 'id="follow-toggle" aria-pressed="true"' in html
    state = _panel_state(html)
    assert state["reminder"]["status"] == "scheduled" and state["following"] is True
    # The drop's start is given in the page's zone (the account's), and says which.
    assert "America/New_York</p>" in html


def test_a_drop_that_is_no_longer_scheduled_offers_no_reminder(browser_client, drop):
    stream_cancel(stream=drop)
    html = browser_client.get(f"/streams/{drop.pk}/").content.decode()
    assert 'id="remind-toggle"' not in html and 'id="follow-toggle"' in html
