"""Pings and presence (docs/geofences.md, "Pings", "Hysteresis", "Dwell and the beat"):
the service with time passed in, and the endpoint's answers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apps.geofences.exceptions import PingInvalid
from apps.geofences.models import Position, Presence
from apps.geofences.services import geo_ping, presence_beat, venue_update
from apps.geofences.tasks import fire_dwell
from tests.helpers import captured_events

from .conftest import NOON, fresh, offset, square

pytestmark = pytest.mark.django_db


def ping(user, north=0.0, east=0.0, *, accuracy=10.0, at=NOON, now=None):
    lat, lon = offset(north, east)
    return geo_ping(user=user, lat=lat, lon=lon, accuracy_m=accuracy, at=at, now=now or at)


def state(user, venue):
    presence = Presence.objects.filter(user=user, venue=venue).first()
    return presence.state if presence else None


def test_entering_and_leaving(viewer, venue):
    answer = ping(viewer, north=-500)  # 400 m south of the fence
    assert answer == {
        "venues": [{"id": venue.pk, "state": "outside", "entered_at": None, "dwelling": False}],
        "coupons": [],
        "announcements": [],
    }
    assert not Presence.objects.exists()
    answer = ping(viewer, at=NOON + timedelta(seconds=10))
    assert answer["venues"] == [
        {"id": venue.pk, "state": "inside", "entered_at": "2026-06-01T10:00:10Z", "dwelling": False}
    ]
    assert state(viewer, venue) == "inside"
    answer = ping(viewer, north=500, at=NOON + timedelta(seconds=20))
    assert answer["venues"][0]["state"] == "outside"
    assert state(viewer, venue) == "outside"
    position = Position.objects.get(user=viewer)
    assert position.at == NOON + timedelta(seconds=20)
    assert Position.objects.count() == 1


def test_far_away_ping_lists_nothing_but_still_exits(viewer, venue):
    ping(viewer)
    answer = ping(viewer, north=50_000, at=NOON + timedelta(seconds=5))
    assert answer["venues"] == [{"id": venue.pk, "state": "outside", "entered_at": None, "dwelling": False}]
    assert ping(viewer, north=50_000, at=NOON + timedelta(seconds=9))["venues"] == []


def test_a_straddling_ping_changes_nothing(viewer, venue):
    # The edge is 100 m north; a 30 m accuracy circle centred 10 m inside straddles it.
    with captured_events() as events:
        answer = ping(viewer, north=90, accuracy=30)
    assert events == []
    assert answer["venues"][0]["state"] == "outside"
    assert not Presence.objects.exists()
    ping(viewer, accuracy=5, at=NOON + timedelta(seconds=1))
    with captured_events() as events:
        ping(viewer, north=110, accuracy=30, at=NOON + timedelta(seconds=2))  # 10 m outside, straddling
        ping(viewer, north=90, accuracy=30, at=NOON + timedelta(seconds=3))
        ping(viewer, north=50, accuracy=30, at=NOON + timedelta(seconds=4))  # inside again
    assert events == []
    assert state(viewer, venue) == "inside"
    # Each of those pings said the viewer is still there (the beat's silence counts from it).
    presence = Presence.objects.get(user=viewer, venue=venue)
    assert (presence.entered_at, presence.last_ping_at) == (NOON + timedelta(seconds=1), NOON + timedelta(seconds=4))
    with captured_events() as events:
        ping(viewer, north=140, accuracy=30, at=NOON + timedelta(seconds=5))  # wholly outside
    assert [e[0] for e in events] == ["venue.exited"]


def test_dwell_on_a_ping_after_the_dwell_time(viewer, venue):
    ping(viewer)
    assert ping(viewer, at=NOON + timedelta(seconds=299))["venues"][0]["dwelling"] is False
    with captured_events() as events:
        answer = ping(viewer, at=NOON + timedelta(seconds=300))
    assert answer["venues"][0]["dwelling"] is True
    assert [e[0] for e in events] == ["venue.dwelled"]
    with captured_events() as events:
        ping(viewer, at=NOON + timedelta(seconds=400))
    assert events == []


def test_the_beat_fires_dwell_for_a_silent_viewer_and_exits_them_later(viewer, other_viewer, venue, settings):
    settings.GEO_PRESENCE_SILENT_SECONDS = 900
    ping(viewer)
    ping(other_viewer, at=NOON + timedelta(seconds=100))
    with captured_events() as events:
        assert presence_beat(now=NOON + timedelta(seconds=299)) == {"dwelled": 0, "exited": 0}
    assert events == []
    with captured_events() as events:
        assert fire_dwell.apply(kwargs={"now": NOON + timedelta(seconds=301)}).get() == {"dwelled": 1, "exited": 0}
    assert [(e[0], e[1]["user"]) for e in events] == [("venue.dwelled", viewer.pk)]
    assert Presence.objects.get(user=viewer).dwelled_at == NOON + timedelta(seconds=301)
    with captured_events() as events:
        assert presence_beat(now=NOON + timedelta(seconds=302)) == {"dwelled": 0, "exited": 0}
    assert events == []
    # Silent past the window (last pings at 0 s and 100 s): both exited by the beat; the
    # other viewer's dwell, due at 400 s when no beat ran, is not owed to someone silent
    # for 15 minutes.
    with captured_events() as events:
        assert presence_beat(now=NOON + timedelta(seconds=1001)) == {"dwelled": 0, "exited": 2}
    assert [(e[0], e[1]["user"]) for e in events] == [("venue.exited", viewer.pk), ("venue.exited", other_viewer.pk)]


def test_the_beat_skips_inactive_venues(viewer, venue):
    ping(viewer)
    venue_update(venue=venue, is_active=False)
    fresh()
    assert presence_beat(now=NOON + timedelta(seconds=400)) == {"dwelled": 0, "exited": 0}


def test_stale_and_inaccurate_pings_are_ignored(viewer, venue, settings):
    settings.GEO_PING_MAX_AGE_SECONDS = 300
    settings.GEO_PING_MAX_ACCURACY_M = 150
    answer = ping(viewer, at=NOON - timedelta(seconds=301), now=NOON)
    assert answer == {"ignored": "stale", "venues": [], "coupons": [], "announcements": []}
    assert ping(viewer, accuracy=151)["ignored"] == "inaccurate"
    assert not Position.objects.exists() and not Presence.objects.exists()


def test_a_late_ping_older_than_the_last_changes_nothing(viewer, venue):
    ping(viewer, at=NOON + timedelta(seconds=10))
    with captured_events() as events:
        ping(viewer, north=500, at=NOON + timedelta(seconds=5), now=NOON + timedelta(seconds=11))
    assert events == []
    assert state(viewer, venue) == "inside"


def test_future_and_out_of_range_pings_are_refused(viewer, venue):
    with pytest.raises(PingInvalid) as caught:
        ping(viewer, at=NOON + timedelta(seconds=31), now=NOON)
    assert caught.value.code == "ping_in_future"
    with pytest.raises(PingInvalid):
        geo_ping(user=viewer, lat=91, lon=0, accuracy_m=5, now=NOON)
    assert not Position.objects.exists()


def test_inactive_venues_are_not_tracked(viewer, venue):
    venue_update(venue=venue, is_active=False)
    fresh()
    assert ping(viewer) == {"venues": [], "coupons": [], "announcements": []}
    assert not Presence.objects.exists()


def test_announcement_within_the_announce_radius_before_the_event(viewer, venue):
    venue_update(
        venue=venue, announcement="Doors at 8", announce_radius_m=2000, event_starts_at=NOON + timedelta(hours=2)
    )
    fresh()
    answer = ping(viewer, north=1600)  # 1.5 km from the edge
    assert answer["announcements"] == [
        {
            "venue": venue.pk,
            "name": "Pop-up Mitte",
            "text": "Doors at 8",
            "starts_at": "2026-06-01T12:00:00Z",
            "distance_m": pytest.approx(1500, abs=1),
        }
    ]
    assert answer["venues"] == []  # more than 1 km away
    assert ping(viewer, north=2200, at=NOON + timedelta(seconds=1))["announcements"] == []
    assert ping(viewer, at=NOON + timedelta(hours=3))["announcements"] == []  # after the start


def test_closed_hours_track_presence_but_issue_no_coupons(viewer, venue, monkeypatch):
    from datetime import time

    from apps.geofences import services
    from tests.geofences.coupon_helpers import make_offer

    venue_update(venue=venue, hours=[(0, time(18, 0), time(2, 0))])  # Mondays 18:00-02:00 Berlin
    make_offer(venue.location.shop, venue=venue, starts_at=NOON - timedelta(days=1))
    fresh()
    calls = []
    monkeypatch.setattr(services, "coupons_issue", lambda **kw: calls.append(kw) or [])
    ping(viewer)  # Monday 12:00 Berlin: closed
    assert state(viewer, venue) == "inside" and calls == []
    ping(viewer, north=500, at=NOON + timedelta(hours=9))
    ping(viewer, at=NOON + timedelta(hours=9, seconds=1))  # Monday 21:00 Berlin: open
    assert [c["trigger"] for c in calls] == ["enter"]


def test_polygon_and_circle_venues_side_by_side(viewer, venue, creator):
    from apps.geofences.services import venue_create

    lat, lon = offset(east=400)
    circle = venue_create(
        shop=creator.shop, name="Kiosk", fence_kind="circle", center_lon=lon, center_lat=lat, radius_m=50
    )
    fresh()
    answer = ping(viewer, east=390, accuracy=5)
    assert answer["venues"] == [
        {"id": venue.pk, "state": "outside", "entered_at": None, "dwelling": False},
        {"id": circle.pk, "state": "inside", "entered_at": "2026-06-01T10:00:00Z", "dwelling": False},
    ]


def test_fence_square_helper_sanity():
    assert len(square(10)) == 5


@pytest.mark.django_db(transaction=True)
def test_a_ping_at_a_venue_another_process_just_deleted_answers_without_it(viewer, venue):
    """Another process deleted the venue; this one's fences are up to
    GEO_FENCE_CACHE_CHECK_MS old and still have it. The presence insert fails on the
    foreign key at commit; the ping reloads the fences and answers without the venue
    (before: a 500)."""
    from apps.geofences.fence_cache import fence_cache
    from apps.geofences.models import Venue

    assert fence_cache.get(venue.pk) is not None  # this process has loaded the venue
    Venue.objects.filter(pk=venue.pk).delete()  # as another process would: no local invalidation
    assert fence_cache.get(venue.pk) is not None  # still cached here
    answer = ping(viewer)
    assert answer["venues"] == [] and not Presence.objects.exists()
    assert Position.objects.filter(user=viewer).exists()


def test_a_venue_without_a_running_offer_of_the_trigger_looks_for_no_coupons(
    viewer, venue, monkeypatch, django_capture_on_commit_callbacks
):
    """The fence cache knows which offers run where: entering a venue whose only offer is
    for dwellers, or has not started, issues nothing without asking the database; a new
    offer reaches the cache through geo_offer_save (docs/geofences.md, "Fence cache")."""
    from apps.geofences import services
    from tests.geofences.coupon_helpers import make_offer

    make_offer(venue.location.shop, venue=venue, trigger="dwell", starts_at=NOON - timedelta(hours=1))
    make_offer(venue.location.shop, venue=venue, starts_at=NOON + timedelta(hours=1))  # enter, later
    calls = []
    monkeypatch.setattr(services, "coupons_issue", lambda **kw: calls.append(kw) or [])
    ping(viewer)
    assert state(viewer, venue) == "inside" and calls == []
    with django_capture_on_commit_callbacks(execute=True):  # as its commit would
        make_offer(venue.location.shop, venue=venue, starts_at=NOON - timedelta(minutes=1))  # enter, running
    ping(viewer, north=500, at=NOON + timedelta(seconds=10))
    ping(viewer, at=NOON + timedelta(seconds=20))
    assert [c["trigger"] for c in calls] == ["enter"]
