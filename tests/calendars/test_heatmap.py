"""The audience heatmap (docs/calendars.md, "Audience heatmap") against counts computed by
hand, in two weeks of 2027: the week New York springs forward (Sunday 14 March) and the
week London does (Sunday 28 March), so the same followers land on different hours."""

from __future__ import annotations

from datetime import date

import pytest

from apps.calendars.heatmap import heatmap
from apps.calendars.services import follow_set, preferences_parse, preferences_set
from apps.calendars.windows import Availability
from tests.factories import CreatorFactory, UserFactory

FRI, SAT, SUN = 4, 5, 6


def _m(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


# A: New York, quiet 22:00-08:00, no windows.
# B: London, no quiet hours, one window: Friday 18:00-24:00.
# C: Tokyo, quiet 23:00-07:00, windows Saturday and Sunday 09:00-12:00.
# D: New York, no quiet hours, window Sunday 01:00-04:00 (across the spring-forward gap).
FOLLOWERS = {
    "A": {"time_zone": "America/New_York", "quiet_hours": {"start": "22:00", "end": "08:00"}, "windows": []},
    "B": {
        "time_zone": "Europe/London",
        "quiet_hours": None,
        "windows": [{"weekday": FRI, "start": "18:00", "end": "24:00"}],
    },
    "C": {
        "time_zone": "Asia/Tokyo",
        "quiet_hours": {"start": "23:00", "end": "07:00"},
        "windows": [
            {"weekday": SAT, "start": "09:00", "end": "12:00"},
            {"weekday": SUN, "start": "09:00", "end": "12:00"},
        ],
    },
    "D": {
        "time_zone": "America/New_York",
        "quiet_hours": None,
        "windows": [{"weekday": SUN, "start": "01:00", "end": "04:00"}],
    },
}


def _availability(spec) -> Availability:
    quiet = spec["quiet_hours"]
    return Availability(
        time_zone=spec["time_zone"],
        quiet=(_m(quiet["start"]), _m(quiet["end"])) if quiet else None,
        windows=tuple((w["weekday"], _m(w["start"]), _m(w["end"])) for w in spec["windows"]),
    )


def _expected(week: str) -> list[list[int]]:
    """By hand, in New York time (EST, UTC-5, until 02:00 on 14 March; EDT, UTC-4, after)."""
    counts = [[0] * 24 for _ in range(7)]

    def add(day, hours):
        for hour in hours:
            counts[day][hour] += 1

    for day in range(7):
        add(day, range(8, 22))  # A: 08:00-21:00 starts, every day, both weeks
    if week == "2027-03-08":
        add(FRI, range(13, 19))  # B: Fri 18:00-24:00 GMT = 13:00-19:00 EST
        add(FRI, [19, 20, 21])  # C: Sat 09:00-12:00 JST = Fri 19:00-22:00 EST
        add(SAT, [19, 20, 21])  # C: Sun 09:00-12:00 JST = Sat 19:00-22:00 EST
        add(SUN, [1, 3])  # D: 01:00 EST and 03:00 EDT; 02:00 does not exist
    else:  # 2027-03-22: New York on EDT all week, London on GMT until Sunday 01:00 UTC
        add(FRI, range(14, 20))  # B: Fri 18:00-24:00 GMT = 14:00-20:00 EDT
        add(FRI, [20, 21, 22])  # C: = Fri 20:00-23:00 EDT
        add(SAT, [20, 21, 22])
        add(SUN, [1, 2, 3])  # D
    return counts


@pytest.mark.parametrize(("week", "missing"), [("2027-03-08", [(SUN, 2)]), ("2027-03-22", [])])
def test_counts_match_the_hand_computed_ones(week, missing):
    result = heatmap(
        availabilities=[_availability(spec) for spec in FOLLOWERS.values()],
        time_zone="America/New_York",
        week_start=date.fromisoformat(week),
    )
    assert result.followers == 4 and result.missing == missing
    assert result.counts == _expected(week)


@pytest.fixture
def audience(db):
    creator = CreatorFactory(time_zone="America/New_York")
    for spec in FOLLOWERS.values():
        user = UserFactory()
        preferences_set(user=user, prefs=preferences_parse(**spec, channels=["inapp"], lead_minutes=15))
        follow_set(user=user, shop=creator.shop)
    # E: never saved preferences (account zone Asia/Kolkata): any hour is free.
    follow_set(user=UserFactory(time_zone="Asia/Kolkata"), shop=creator.shop)
    UserFactory()  # not a follower
    return creator


def test_the_creator_gets_the_counts_of_their_followers(api_client, audience):
    api_client.force_login(audience)
    response = api_client.get(f"/api/v1/shops/{audience.shop.slug}/audience-availability/?week=2027-03-11")
    assert response.status_code == 200
    body = response.json()
    expected = _expected("2027-03-08")
    for day in range(7):
        for hour in range(24):
            expected[day][hour] += 0 if (day, hour) == (SUN, 2) else 1  # E
    assert body == {
        "time_zone": "America/New_York",
        "week_start": "2027-03-08",
        "followers": 5,
        "counts": expected,
        "missing_hours": [[SUN, 2]],
    }
    this_week = api_client.get(f"/api/v1/shops/{audience.shop.slug}/audience-availability/").json()
    assert date.fromisoformat(this_week["week_start"]).weekday() == 0


def test_only_the_creator_and_staff_see_it(api_client, audience):
    url = f"/api/v1/shops/{audience.shop.slug}/audience-availability/"
    assert api_client.get(url).status_code == 401
    api_client.force_login(CreatorFactory())
    response = api_client.get(url)
    assert response.status_code == 403 and response.json()["code"] == "not_your_shop"
    api_client.force_login(UserFactory())
    assert api_client.get(url).status_code == 403
    api_client.force_login(UserFactory(is_staff=True))
    assert api_client.get(url).status_code == 200
    assert api_client.get(url + "?week=not-a-date").status_code == 400
    response = api_client.get("/api/v1/shops/no-such-shop/audience-availability/")
    assert response.status_code == 404 and response.json()["code"] == "shop_not_found"


def test_the_drop_admin_page_shows_the_heatmap_with_the_slot_marked(client, audience):
    from datetime import UTC, datetime

    from apps.streams.services import stream_create

    drop = stream_create(shop=audience.shop, title="Friday drop", starts_at=datetime(2027, 3, 12, 23, 0, tzinfo=UTC))
    client.force_login(audience)
    page = client.get(f"/admin/streams/stream/{drop.pk}/change/").content.decode()
    assert 'id="audience-heatmap"' in page and 'data-week-start="2027-03-08"' in page
    # 23:00 UTC is 18:00 EST on Friday: that cell is the chosen one.
    assert 'data-weekday="4" data-hour="18" data-count="3"\n            class="audience-cell audience-chosen' in page
    assert page.count("audience-cell audience-chosen") == 1
    add = client.get("/admin/streams/stream/add/").content.decode()
    assert 'id="audience-heatmap"' in add and "audience-cell audience-chosen" not in add
