"""The audience heatmap (docs/calendars.md, "Audience heatmap"): how many of a shop's
followers are available at each hour of a week, in the creator's zone.

Pure: it takes the followers' availabilities (``selectors.followers_settings``) and uses the
delivery rule's own predicate, ``windows.Availability.is_free``: a follower is available in
a slot when the slot's **first instant** (local hour ``h:00`` in the creator's zone) is free
for them, i.e. its wall-clock time in the follower's zone is outside their quiet hours and,
if they have windows, inside one.

The week: seven local days of the creator's zone from Monday 00:00 (``week_start``, a
Monday). Each slot is the real instant of that local hour in that week, so a follower in
another zone whose clocks change that week (or the creator's) is counted at the right
hour. An hour that does not exist in the creator's zone that week (the hour clocks skip in
spring) counts 0 and is listed in ``missing``; an hour that happens twice (in autumn) is
taken the first time (``fold=0``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from .windows import Availability, zone


@dataclass(frozen=True)
class Heatmap:
    time_zone: str
    week_start: date
    counts: list[list[int]]  # [weekday 0 = Monday .. 6][hour 0 .. 23]
    followers: int
    missing: list[tuple[int, int]]  # (weekday, hour) that does not exist in the zone that week


def week_monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def slot_instant(time_zone: str, week_start: date, weekday: int, hour: int) -> datetime | None:
    """The UTC instant of local ``hour:00`` of ``week_start + weekday`` days in ``time_zone``
    (the first one when it happens twice), or None when that wall time does not exist."""
    tz = zone(time_zone)
    day = week_start + timedelta(days=weekday)
    local = datetime(day.year, day.month, day.day, hour, tzinfo=tz)  # fold=0: the first
    instant = local.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None  # in the gap: the round trip lands on another wall time
    return instant


def heatmap(*, availabilities: Iterable[Availability], time_zone: str, week_start: date) -> Heatmap:
    """Count, for each hour of the week in ``time_zone``, the availabilities free at its
    first instant. Identical availabilities are evaluated once."""
    groups = Counter(availabilities)
    counts = [[0] * 24 for _ in range(7)]
    missing = []
    for weekday in range(7):
        for hour in range(24):
            instant = slot_instant(time_zone, week_start, weekday, hour)
            if instant is None:
                missing.append((weekday, hour))
                continue
            counts[weekday][hour] = sum(n for availability, n in groups.items() if availability.is_free(instant))
    return Heatmap(
        time_zone=time_zone,
        week_start=week_start,
        counts=counts,
        followers=sum(groups.values()),
        missing=missing,
    )
