"""``deliver_at`` (apps/calendars/windows.py, docs/calendars.md "When a reminder goes out"):
named cases on the days clocks change, and properties over zones, quiet hours spanning
midnight, windows and drops around DST transitions, checked by brute force to the minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.calendars.windows import HORIZON, MINUTE, Availability, deliver_at, schedule

NY = ZoneInfo("America/New_York")


def hm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- named cases --------------------------------------------------------------------------

NIGHT = Availability("America/New_York", quiet=(hm("22:00"), hm("08:00")))


def test_new_york_spring_forward_morning_drop_gets_the_right_instant():
    """2027-03-14: clocks in New York spring from 02:00 EST to 03:00 EDT. A drop at 09:00
    EDT (13:00Z), lead 60: 08:00 EDT is the end of quiet hours (exclusive), free."""
    drop = datetime(2027, 3, 14, 9, 0, tzinfo=NY)
    assert drop.astimezone(UTC) == utc("2027-03-14T13:00:00Z")
    assert deliver_at(starts_at=drop, lead_minutes=60, availability=NIGHT) == utc("2027-03-14T12:00:00Z")


def test_spring_forward_lead_counts_elapsed_minutes_and_quiet_hours_push_it_to_the_evening_before():
    # 08:30 EDT - 60 min = 07:30 EDT: quiet. The last free minute is 21:59 EST on the 13th.
    drop = datetime(2027, 3, 14, 8, 30, tzinfo=NY)
    assert deliver_at(starts_at=drop, lead_minutes=60, availability=NIGHT) == utc("2027-03-14T02:59:00Z")
    # 04:00 EDT (08:00Z) - 120 elapsed minutes = 06:00Z = 01:00 EST (not the 02:00 that does not exist).
    free_all_night = Availability("America/New_York")
    drop = datetime(2027, 3, 14, 4, 0, tzinfo=NY)
    assert deliver_at(starts_at=drop, lead_minutes=120, availability=free_all_night) == utc("2027-03-14T06:00:00Z")


def test_a_quiet_hours_end_inside_the_gap_takes_effect_at_the_first_wall_time_after_it():
    """Quiet 22:00-02:30: on spring-forward day 02:30 does not exist. Quiet hours are judged
    by each instant's wall time, so they end when the clock jumps to 03:00 EDT (07:00Z)."""
    quiet = Availability("America/New_York", quiet=(hm("22:00"), hm("02:30")))
    assert quiet.is_quiet(utc("2027-03-14T06:59:00Z"))  # 01:59 EST
    assert not quiet.is_quiet(utc("2027-03-14T07:00:00Z"))  # 03:00 EDT
    # Drop 03:45 EDT, lead 30: 03:15 EDT, free.
    drop = datetime(2027, 3, 14, 3, 45, tzinfo=NY)
    assert deliver_at(starts_at=drop, lead_minutes=30, availability=quiet) == utc("2027-03-14T07:15:00Z")
    # Drop 03:20 EDT, lead 30: 01:50 EST, quiet: back to 21:59 EST the evening before.
    drop = datetime(2027, 3, 14, 3, 20, tzinfo=NY)
    assert deliver_at(starts_at=drop, lead_minutes=30, availability=quiet) == utc("2027-03-14T02:59:00Z")


def test_new_york_fall_back_a_repeated_wall_time_is_quiet_both_times():
    """2027-11-07: 02:00 EDT becomes 01:00 EST, so 01:00-01:59 happens twice (05:00Z-05:59Z
    EDT, 06:00Z-06:59Z EST). Quiet 22:00-01:30: 01:15 is quiet both times, 01:45 free both
    times."""
    quiet = Availability("America/New_York", quiet=(hm("22:00"), hm("01:30")))
    assert quiet.is_quiet(utc("2027-11-07T05:15:00Z")) and quiet.is_quiet(utc("2027-11-07T06:15:00Z"))
    assert not quiet.is_quiet(utc("2027-11-07T05:45:00Z")) and not quiet.is_quiet(utc("2027-11-07T06:45:00Z"))
    # Drop 01:45 EST (06:45Z), lead 30: 01:15 EST, quiet; the latest free minute before it
    # is 01:59 EDT, the first time round (05:59Z).
    drop = datetime(2027, 11, 7, 1, 45, fold=1, tzinfo=NY)
    assert drop.astimezone(UTC) == utc("2027-11-07T06:45:00Z")
    assert deliver_at(starts_at=drop, lead_minutes=30, availability=quiet) == utc("2027-11-07T05:59:00Z")
    # Quiet 22:00-08:00, drop 09:00 EST (14:00Z), lead 60: 08:00 EST.
    drop = datetime(2027, 11, 7, 9, 0, tzinfo=NY)
    assert deliver_at(starts_at=drop, lead_minutes=60, availability=NIGHT) == utc("2027-11-07T13:00:00Z")


def test_lord_howe_half_hour_fall_back():
    """Australia/Lord_Howe falls back half an hour (02:00 +11 -> 01:30 +10:30) on 2027-04-04:
    01:30-01:59 happens twice (14:30Z-14:59Z and 15:00Z-15:29Z on the 3rd)."""
    quiet = Availability("Australia/Lord_Howe", quiet=(hm("01:30"), hm("06:00")))
    assert quiet.is_quiet(utc("2027-04-03T14:30:00Z")) and quiet.is_quiet(utc("2027-04-03T15:00:00Z"))
    assert not quiet.is_quiet(utc("2027-04-03T14:29:00Z"))  # 01:29 +11
    # Drop 07:00 +10:30 (20:30Z), lead 120: 18:30Z = 05:00, quiet. Free last at 01:29 +11.
    assert deliver_at(starts_at=utc("2027-04-03T20:30:00Z"), lead_minutes=120, availability=quiet) == utc(
        "2027-04-03T14:29:00Z"
    )


def test_windows_pick_the_latest_minute_of_the_last_window_before_the_drop():
    # Windows Monday 18:00-19:00 and Wednesday 12:00-12:30, Berlin; drop Thursday.
    berlin = Availability("Europe/Berlin", windows=[(0, hm("18:00"), hm("19:00")), (2, hm("12:00"), hm("12:30"))])
    drop = datetime(2027, 6, 10, 20, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # Thursday
    assert deliver_at(starts_at=drop, lead_minutes=15, availability=berlin) == utc("2027-06-09T10:29:00Z")


def test_a_window_to_midnight_and_quiet_hours_leaving_nothing_free_is_unschedulable():
    none_free = Availability(
        "UTC", quiet=(hm("00:00"), hm("23:59")), windows=[(w, hm("00:00"), hm("23:00")) for w in range(7)]
    )
    assert deliver_at(starts_at=utc("2027-01-10T12:00:00Z"), lead_minutes=0, availability=none_free) is None
    late = Availability("UTC", windows=[(6, hm("23:00"), 24 * 60)])  # Sundays 23:00-24:00
    # Drop Tuesday 2027-01-12 10:00: the last free minute is Sunday 23:59.
    assert deliver_at(starts_at=utc("2027-01-12T10:00:00Z"), lead_minutes=0, availability=late) == utc(
        "2027-01-10T23:59:00Z"
    )


def test_a_free_target_keeps_its_seconds():
    drop = utc("2027-05-01T12:00:30Z")
    assert deliver_at(starts_at=drop, lead_minutes=15, availability=Availability("UTC")) == utc("2027-05-01T11:45:30Z")


def test_schedule_when_deliver_at_is_already_past():
    drop = utc("2027-05-01T12:00:00Z")
    night = Availability("UTC", quiet=(hm("22:00"), hm("08:00")))
    # Set 10 minutes before a drop with a 60-minute lead: now is free, so now.
    now = utc("2027-05-01T11:50:00Z")
    assert schedule(starts_at=drop, lead_minutes=60, availability=night, now=now) == (now, "scheduled")
    # The same at 07:50 for an 08:00 drop: now is quiet, never sent inside quiet hours.
    early = utc("2027-05-01T08:00:00Z")
    plan = schedule(starts_at=early, lead_minutes=60, availability=night, now=utc("2027-05-01T07:50:00Z"))
    assert plan == (None, "missed")
    # The drop has started: missed.
    assert schedule(starts_at=drop, lead_minutes=0, availability=night, now=drop + MINUTE) == (None, "missed")
    # In time: the computed instant.
    assert schedule(starts_at=drop, lead_minutes=60, availability=night, now=utc("2027-05-01T09:00:00Z")) == (
        utc("2027-05-01T11:00:00Z"),
        "scheduled",
    )


# -- properties ---------------------------------------------------------------------------

ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Apia", "Asia/Kolkata", "UTC"]


def _transitions(name: str) -> list[datetime]:
    """The instants in 2026-2028 when the zone's UTC offset changes (hourly scan, then to
    the minute): an implementation of its own, not windows.offset_pieces."""
    tz = ZoneInfo(name)
    out = []
    at = datetime(2026, 1, 1, tzinfo=UTC)
    offset = at.astimezone(tz).utcoffset()
    while at < datetime(2029, 1, 1, tzinfo=UTC):
        nxt = at + timedelta(hours=1)
        if nxt.astimezone(tz).utcoffset() != offset:
            minute = at
            while minute.astimezone(tz).utcoffset() == offset:
                minute += MINUTE
            out.append(minute)
            offset = minute.astimezone(tz).utcoffset()
        at = nxt
    return out


TRANSITIONS = {name: _transitions(name) for name in ZONES}


def test_the_zones_have_the_transitions_the_properties_need():
    assert len(TRANSITIONS["America/New_York"]) == 6
    assert len(TRANSITIONS["Australia/Lord_Howe"]) == 6
    assert TRANSITIONS["Asia/Kolkata"] == [] and TRANSITIONS["UTC"] == []


minutes_of_day = st.integers(min_value=0, max_value=24 * 60 - 1)


@st.composite
def quiet_hours(draw):
    if draw(st.booleans()):
        return None
    start = draw(minutes_of_day)
    spans_midnight = draw(st.booleans())
    if spans_midnight and start > 0:
        end = draw(st.integers(min_value=0, max_value=start - 1))
    else:
        end = draw(st.integers(min_value=0, max_value=24 * 60 - 1).filter(lambda e: e != start))
    return (start, end)


@st.composite
def weekly_windows(draw):
    windows = []
    for _ in range(draw(st.integers(min_value=0, max_value=5))):
        weekday = draw(st.integers(min_value=0, max_value=6))
        start = draw(st.integers(min_value=0, max_value=24 * 60 - 1))
        end = draw(st.integers(min_value=start + 1, max_value=24 * 60))
        if all(w != weekday or end <= a or b <= start for w, a, b in windows):
            windows.append((weekday, start, end))
    return tuple(windows)


@st.composite
def drops(draw, name):
    """A drop near one of the zone's transitions (or anywhere in 2027 if it has none)."""
    near = TRANSITIONS[name]
    if near and draw(st.integers(min_value=0, max_value=4)):
        base = draw(st.sampled_from(near))
        delta = draw(st.integers(min_value=-3 * 24 * 60, max_value=3 * 24 * 60))
        at = base + timedelta(minutes=delta)
    else:
        at = datetime(2027, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(min_value=0, max_value=525_600)))
    return at + timedelta(seconds=draw(st.sampled_from([0, 0, 0, 30])))


@st.composite
def cases(draw):
    name = draw(st.sampled_from(ZONES))
    return {
        "availability": Availability(name, quiet=draw(quiet_hours()), windows=draw(weekly_windows())),
        "starts_at": draw(drops(name)),
        "lead_minutes": draw(st.sampled_from([0, 1, 15, 60, 90, 150, 24 * 60, 1441, 10080])),
    }


def _ok(availability: Availability, instant: datetime) -> bool:
    """Free by the definitions alone: not quiet, and in a window when there are windows."""
    return not availability.is_quiet(instant) and availability.in_window(instant)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_deliver_at_is_free_not_after_the_lead_and_the_latest_such_minute(case):
    availability = case["availability"]
    target = case["starts_at"] - timedelta(minutes=case["lead_minutes"])
    found = deliver_at(**case)
    if found is not None:
        assert found.tzinfo is not None and found.utcoffset() == timedelta(0)
        assert not availability.is_quiet(found), "never inside quiet hours"
        assert availability.in_window(found), "inside a window when there are windows"
        assert found <= target, "at least lead_minutes before the drop"
        assert found == target or found.second == 0, "the target itself, or a whole minute"
    # The latest: nothing free after it, up to the target (brute force, minute by minute).
    floor = target.replace(second=0, microsecond=0)
    if found != target:
        assert not _ok(availability, target)
    lowest = found if found is not None else floor - HORIZON - MINUTE
    minute = floor
    while minute > lowest:
        assert not _ok(availability, minute), f"{minute} is free and later than {found}"
        minute -= MINUTE


@settings(max_examples=150, deadline=None, database=None)
@given(cases(), st.integers(min_value=-3000, max_value=3000))
def test_schedule_never_sends_inside_quiet_hours_or_after_the_drop(case, now_offset):
    now = case["starts_at"] - timedelta(minutes=case["lead_minutes"]) + timedelta(minutes=now_offset)
    plan = schedule(**case, now=now)
    if plan.deliver_at is None:
        assert plan.status in {"missed", "unschedulable"}
        return
    assert plan.status == "scheduled"
    assert _ok(case["availability"], plan.deliver_at)
    assert plan.deliver_at <= case["starts_at"]
    assert plan.deliver_at >= now.replace(second=0, microsecond=0)


@pytest.mark.parametrize("name", ZONES)
def test_every_zone_agrees_with_brute_force_around_each_transition(name):
    """A fixed sweep besides hypothesis: quiet 23:30-06:45 and two windows, drops every 37
    minutes across each transition day."""
    availability = Availability(name, quiet=(hm("23:30"), hm("06:45")), windows=((0, 300, 1440), (5, 60, 200)))
    for base in TRANSITIONS[name] or [datetime(2027, 3, 1, tzinfo=UTC)]:
        at = base - timedelta(hours=30)
        while at < base + timedelta(hours=30):
            found = deliver_at(starts_at=at, lead_minutes=45, availability=availability)
            target = at - timedelta(minutes=45)
            expected, minute = None, target
            while minute > target - HORIZON - MINUTE:
                if _ok(availability, minute):
                    expected = minute
                    break
                minute -= MINUTE
            assert found == expected, (name, at)
            at += timedelta(minutes=37 * 7)
