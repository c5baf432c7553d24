"""A viewer does everything of preference-first calendars in the browser (docs/calendars.md,
"In the browser"), in Debian's Chromium against a real daphne with the demo data: sets their
zone (New York), quiet hours and lead on /me/calendar/ (a refused value shows its error next
to the field), asks for a reminder on a drop's page and sees when it goes out in New York
time (moved before the quiet hours), follows the shop, opts in to the calendar feed, finds
the drop in it, gets a new link (the old one answers 404), turns the feed off, and marks an
in-app notification read. Screenshots at desktop size and 360 px wide."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from tests.browser import ARTIFACTS, DESKTOP, assert_no_sideways_scroll, demo_server, login, new_page, shot

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 780}

# After seed_demo: a viewer who never set calendar preferences (account zone Berlin), a drop
# of the demo shop at 08:30 New York time five days ahead, and an in-app reminder of a drop
# starting in ten minutes, sent by the dispatcher.
CAL_SETUP = r"""
import json
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from allauth.account.models import EmailAddress
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.services import user_set_time_zone
from apps.calendars.services import reminder_set, reminders_dispatch
from apps.streams.services import stream_create
from creatorcommerce.demo import DEMO_PASSWORD, DEMO_USERS

shop = User.objects.get(email=DEMO_USERS["creator"][0]).shop
viewer = User.objects.create_user(email="cal-viewer@demo.local", password=DEMO_PASSWORD, display_name="Cal Viewer")
EmailAddress.objects.create(user=viewer, email=viewer.email, verified=True, primary=True)
user_set_time_zone(user=viewer, time_zone="Europe/Berlin")

ny = ZoneInfo("America/New_York")
day = (timezone.now().astimezone(ny) + timedelta(days=5)).date()
drop = stream_create(shop=shop, title="Breakfast drop", starts_at=datetime.combine(day, time(8, 30), tzinfo=ny),
                     description="Coffee merch at dawn.")
soon = stream_create(shop=shop, title="Flash hour", starts_at=timezone.now() + timedelta(minutes=10))
reminder_set(user=viewer, stream=soon)
reminders_dispatch()

print("SETUP=" + json.dumps({
    "viewer": viewer.email, "password": DEMO_PASSWORD, "drop": drop.pk, "title": drop.title,
    "uid": str(drop.uid), "day": day.isoformat(), "shop_name": shop.name,
}))
"""


@pytest.fixture(scope="module")
def server():
    with demo_server(CAL_SETUP) as srv:
        yield srv


def _wall(day: date, hhmm: str) -> str:
    """The pages' format of a wall-clock time: "Tue 9 Mar, 21:59"."""
    return f"{day:%a} {day.day} {day:%b}, {hhmm}"


def test_a_viewer_sets_preferences_gets_a_reminder_follows_and_subscribes(server, browser):
    from playwright.sync_api import expect

    # 08:30 in New York less 60 minutes is 07:30, inside quiet hours 22:00-08:00: the latest
    # free minute is 21:59 the evening before, New York time.
    drop_day = date.fromisoformat(server["day"])
    expected = _wall(drop_day - timedelta(days=1), "21:59")
    stream_path = f"/streams/{server['drop']}/"
    errors: list[str] = []
    context = browser.new_context(viewport=DESKTOP)
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        # -- preferences ---------------------------------------------------------------------
        page = login(context, server, server["viewer"], "/me/calendar/", errors, password=server["password"])
        expect(page.get_by_role("link", name="My calendar")).to_have_attribute("aria-current", "page")
        expect(page.locator("#zone-note")).to_contain_text("Europe/Berlin")  # the account's zone, by default
        page.get_by_label("Time zone").select_option("America/New_York")
        page.get_by_label("No reminders during quiet hours").check()
        page.get_by_label("From", exact=True).fill("22:00")
        page.get_by_label("Until", exact=True).fill("08:00")
        lead = page.get_by_label("How long before a drop (minutes)")
        lead.fill("99999")  # refused by the API: its error shows next to the field
        page.get_by_role("button", name="Save settings").click()
        expect(page.locator("#err-lead_minutes")).to_have_text("Enter whole minutes from 0 to 10080 (a week).")
        expect(lead).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#prefs-status")).to_have_text("Not saved: check the highlighted field.")
        lead.fill("60")
        page.get_by_role("button", name="Save settings").click()
        expect(page.locator("#prefs-status")).to_contain_text("Saved.")
        expect(page.locator("#err-lead_minutes")).to_be_hidden()
        expect(page.locator("#zone-note")).to_contain_text("America/New_York")  # the sections came back in it

        # -- the drop's page: remind me, follow ------------------------------------------------
        page.goto(server["base"] + stream_path)
        remind = page.get_by_role("button", name="Remind me")
        expect(remind).to_have_attribute("aria-pressed", "false")
        remind.click()
        expect(remind).to_have_attribute("aria-pressed", "true")
        status = page.locator("#remind-status")
        expect(status).to_contain_text(f"We'll remind you at {expected} New York time (in-app).")
        expect(status).to_contain_text("earlier than 60 minutes before the drop: that moment is in your quiet hours")
        expect(page.locator(".remind__zone")).to_contain_text("America/New_York")
        follow = page.get_by_role("button", name=f"Follow {server['shop_name']}")
        follow.click()
        expect(follow).to_have_attribute("aria-pressed", "true")
        expect(status).to_contain_text(f"You follow {server['shop_name']}")
        page.reload()  # the state is the server's
        expect(page.get_by_role("button", name="Remind me")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#remind-status")).to_contain_text(f"We'll remind you at {expected}")
        page.locator("#remind-panel").scroll_into_view_if_needed()
        shot(page, "calendars-stream-remind-desktop")

        # -- the calendar page: the reminder, the feed ------------------------------------------
        page.goto(server["base"] + "/me/calendar/")
        item = page.locator(f'#reminder-list li[data-stream="{server["drop"]}"]')
        expect(item.get_by_role("link", name=server["title"])).to_have_attribute("href", stream_path)
        expect(item).to_contain_text(f"starts {_wall(drop_day, '08:30')}")
        expect(item).to_contain_text(f"Reminder at {expected} · in-app")  # the default channel
        expect(page.locator("#follow-list")).to_contain_text(server["shop_name"])

        switch = page.get_by_role("switch", name="Show my drops in my calendar app")
        expect(switch).not_to_be_checked()
        switch.check()
        expect(page.locator("#feed-status")).to_contain_text("Calendar feed on.")
        url_box = page.get_by_label("Your private feed URL")
        expect(url_box).to_have_value(re.compile("^" + re.escape(server["base"] + "/calendars/") + r".+\.ics$"))
        old_url = url_box.input_value()
        expect(page.get_by_role("link", name="Subscribe in my calendar app")).to_have_attribute(
            "href", "webcal://" + old_url.split("://", 1)[1]
        )
        feed = page.request.get(old_url)
        assert feed.status == 200 and feed.headers["content-type"].startswith("text/calendar")
        ics = feed.text()
        assert f"SUMMARY:{server['title']}" in ics
        assert f"UID:{server['uid']}@drops.creatorcommerce" in ics
        assert "TRIGGER:-PT1H" in ics  # the alarm at the viewer's 60-minute lead

        page.get_by_role("button", name="Get a new link").click()
        expect(page.locator("#feed-status")).to_contain_text("The old link stopped working")
        expect(url_box).not_to_have_value(old_url)
        new_url = url_box.input_value()
        assert page.request.get(old_url).status == 404
        assert page.request.get(new_url).status == 200

        # -- the in-app notification of the drop that is about to start -----------------------------
        note = page.locator("li.notification.unread")
        expect(note).to_have_count(1)
        expect(note).to_contain_text("Flash hour")
        shot(page, "calendars-page-desktop", full_page=True)
        note.get_by_role("button", name="Mark “Starting soon: Flash hour” as read").click()
        expect(page.locator("#notifications-status")).to_have_text("Marked as read.")
        expect(page.locator("li.notification.unread")).to_have_count(0)

        # -- at 360 px, then off -----------------------------------------------------------------
        small = login(phone, server, server["viewer"], "/me/calendar/", errors, password=server["password"])
        expect(small.get_by_label("Your private feed URL")).to_have_value(new_url)
        assert_no_sideways_scroll(small)
        shot(small, "calendars-page-360", full_page=True)
        small.goto(server["base"] + stream_path)
        expect(small.locator("#remind-status")).to_contain_text(f"We'll remind you at {expected}")
        assert_no_sideways_scroll(small)
        small.locator("#remind-panel").scroll_into_view_if_needed()
        shot(small, "calendars-stream-remind-360")

        page.get_by_role("switch", name="Show my drops in my calendar app").uncheck()
        expect(page.locator("#feed-status")).to_contain_text("The link was deleted and no longer works")
        expect(page.locator("#feed-box")).to_be_hidden()
        assert page.request.get(new_url).status == 404

        # Stop the reminder from the list.
        page.get_by_role("button", name=f"Stop the reminder of {server['title']}").click()
        expect(page.locator("#reminders-status")).to_have_text(f"Reminder of “{server['title']}” stopped.")
        expect(item).to_have_count(0)

        # -- windows, on the phone: an overlap is refused next to them, then saved ----------------
        small.goto(server["base"] + "/me/calendar/")
        small.get_by_role("button", name="Add a window").click()
        small.get_by_role("button", name="Add a window").click()
        small.get_by_label("Window 1: day").select_option(label="Monday")
        small.get_by_label("Window 2: day").select_option(label="Monday")
        small.get_by_label("Window 2: from").fill("20:00")
        small.get_by_label("Window 2: until").fill("22:00")
        small.get_by_role("button", name="Save settings").click()
        expect(small.locator("#err-windows")).to_have_text("Two windows of the same day overlap.")
        expect(small.get_by_label("Window 2: from")).to_have_attribute("aria-invalid", "true")
        assert_no_sideways_scroll(small)
        small.locator("#windows-group").screenshot(path=str(ARTIFACTS / "calendars-windows-360.png"))
        small.get_by_role("button", name="Remove window 2").click()
        small.get_by_role("button", name="Save settings").click()
        expect(small.locator("#prefs-status")).to_contain_text("Saved.")
        prefs = small.request.get(server["base"] + "/api/v1/me/preferences/").json()
        assert prefs["windows"] == [{"weekday": 0, "start": "18:00", "end": "24:00"}]  # until 00:00 is midnight
        assert prefs["quiet_hours"] == {"start": "22:00", "end": "08:00"} and prefs["lead_minutes"] == 60

        # -- anonymous: a link to log in ---------------------------------------------------------
        anonymous = browser.new_context(viewport=PHONE)
        try:
            guest = new_page(anonymous, errors)
            guest.goto(server["base"] + stream_path)
            expect(guest.get_by_role("link", name="Log in to get a reminder")).to_have_attribute(
                "href", f"/accounts/login/?next={stream_path}"
            )
        finally:
            anonymous.close()
        assert errors == []
    finally:
        context.close()
        phone.close()
