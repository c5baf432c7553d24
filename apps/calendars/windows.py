"""When a reminder goes out: ``deliver_at`` (docs/calendars.md, "When a reminder goes out").

Pure functions of a viewer's availability (time zone, quiet hours, weekly windows) and a
drop's time; no database. The rule:

* An instant is *free* for a viewer when its wall-clock time in the viewer's zone (to the
  minute) is outside quiet hours ``[start, end)`` (which may span midnight) and, if the
  viewer has windows, inside one of the windows of that local weekday.
* ``deliver_at`` is the latest free instant at or before ``target = starts_at - lead``
  (``lead_minutes`` are elapsed minutes, not wall-clock minutes): ``target`` itself if it
  is free, otherwise the last whole minute before it that is free. ``None`` when no minute
  of the ``HORIZON`` (8 days) before ``target`` is free.

Days when clocks change need no special case: whether an instant is free depends only on
the wall-clock time it shows, so a quiet-hours boundary that does not exist that day (02:30
when clocks spring from 02:00 to 03:00) takes effect at the first wall time after the gap
(03:00), and a wall time that happens twice (01:30 when clocks fall back) is inside quiet
hours both times if it is inside them at all.

The search walks back over stretches of constant UTC offset: within one, wall-clock time is
UTC plus the offset, so each local day's free minutes map to UTC intervals by arithmetic.
Offsets are found by probing every hour and bisecting to the minute where one changes
(zones change offset at most a few times a year, at whole minutes).
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

MINUTE = timedelta(minutes=1)
DAY_MINUTES = 24 * 60
HORIZON = timedelta(days=8)
_PROBE = timedelta(hours=1)

Interval = tuple[int, int]  # [start, end) in minutes of a local day, 0 <= start < end <= 1440


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def _subtract(intervals: Iterable[Interval], cut: Interval) -> list[Interval]:
    out = []
    for a, b in intervals:
        if cut[1] <= a or b <= cut[0]:
            out.append((a, b))
            continue
        if a < cut[0]:
            out.append((a, cut[0]))
        if cut[1] < b:
            out.append((cut[1], b))
    return out


def quiet_intervals(quiet: Interval | None) -> list[Interval]:
    """Quiet hours as intervals of one local day: ``(22:00, 08:00)`` is ``[0, 08:00)`` and
    ``[22:00, 24:00)``."""
    if quiet is None:
        return []
    start, end = quiet
    if start < end:
        return [(start, end)]
    return [iv for iv in ((0, end), (start, DAY_MINUTES)) if iv[0] < iv[1]]


@dataclass(frozen=True)
class Availability:
    """A viewer's availability: ``time_zone`` (IANA), ``quiet`` hours (minutes of the day,
    start != end; start > end spans midnight) or None, ``windows`` as ``(weekday, start,
    end)`` minutes (Monday = 0, ``start < end <= 1440``; none: every time outside quiet hours
    is free)."""

    time_zone: str
    quiet: Interval | None = None
    windows: Sequence[tuple[int, int, int]] = ()
    # The free minutes of each local weekday (sorted, disjoint).
    free: tuple[tuple[Interval, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        by_day: list[list[Interval]] = [[] for _ in range(7)]
        if self.windows:
            for weekday, start, end in self.windows:
                by_day[weekday].append((start, end))
        else:
            by_day = [[(0, DAY_MINUTES)] for _ in range(7)]
        free = []
        for intervals in by_day:
            day = sorted(intervals)
            for cut in quiet_intervals(self.quiet):
                day = _subtract(day, cut)
            free.append(tuple(day))
        object.__setattr__(self, "free", tuple(free))

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zone(self.time_zone)

    def is_free(self, instant: datetime) -> bool:
        """Whether ``instant`` (aware) is outside quiet hours and inside a window (if any)."""
        local = instant.astimezone(self.tz)
        minute = local.hour * 60 + local.minute
        return any(a <= minute < b for a, b in self.free[local.weekday()])

    def is_quiet(self, instant: datetime) -> bool:
        """Whether ``instant``'s local wall-clock time is inside quiet hours."""
        local = instant.astimezone(self.tz)
        minute = local.hour * 60 + local.minute
        return any(a <= minute < b for a, b in quiet_intervals(self.quiet))

    def in_window(self, instant: datetime) -> bool:
        """Whether ``instant`` is inside one of the windows (True when there are none)."""
        if not self.windows:
            return True
        local = instant.astimezone(self.tz)
        minute = local.hour * 60 + local.minute
        return any(w == local.weekday() and a <= minute < b for w, a, b in self.windows)


def _floor_minute(instant: datetime) -> datetime:
    return instant.replace(second=0, microsecond=0)


def _offset(tz: zoneinfo.ZoneInfo, instant: datetime) -> timedelta:
    return instant.astimezone(tz).utcoffset()


def offset_pieces(tz: zoneinfo.ZoneInfo, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime, timedelta]]:
    """``[(start, end, offset)]``: ``[lo, hi)`` (UTC, whole minutes) cut where the zone's
    UTC offset changes, in order."""
    pieces = []
    start, offset = lo, _offset(tz, lo)
    probe = lo
    while probe < hi:
        nxt = min(probe + _PROBE, hi - MINUTE)
        if nxt <= probe:
            break
        if _offset(tz, nxt) != offset:
            # The first minute in (probe, nxt] with the new offset.
            before, after = probe, nxt
            while after - before > MINUTE:
                mid = _floor_minute(before + (after - before) / 2)
                if mid <= before:
                    mid = before + MINUTE
                if _offset(tz, mid) == offset:
                    before = mid
                else:
                    after = mid
            pieces.append((start, after, offset))
            start, offset = after, _offset(tz, after)
            probe = after
            continue
        probe = nxt
    pieces.append((start, hi, offset))
    return pieces


def deliver_at(
    *, starts_at: datetime, lead_minutes: int, availability: Availability, horizon: timedelta = HORIZON
) -> datetime | None:
    """The latest free instant at or before ``starts_at - lead_minutes`` (UTC), or None if
    no minute of ``horizon`` before it is free (module docstring)."""
    target = starts_at.astimezone(UTC) - timedelta(minutes=lead_minutes)
    if availability.is_free(target):
        return target
    # Not free: neither is any instant of target's minute (offsets are whole minutes), so
    # the answer is the last free whole minute before it.
    end = _floor_minute(target)
    tz = availability.tz
    for start, stop, offset in reversed(offset_pieces(tz, end - horizon, end)):
        local_first = (start + offset).replace(tzinfo=None)
        local_last = (stop - MINUTE + offset).replace(tzinfo=None)
        day = local_last.date()
        while day >= local_first.date():
            midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) - offset  # local midnight, as UTC
            for a, b in reversed(availability.free[day.weekday()]):
                lo = max(midnight + timedelta(minutes=a), start)
                hi = min(midnight + timedelta(minutes=b), stop)
                if hi > lo:
                    return hi - MINUTE
            day -= timedelta(days=1)
    return None


class Schedule(NamedTuple):
    """When a reminder goes out, and its status: ``scheduled`` (``deliver_at`` set),
    ``unschedulable`` (no free minute in the horizon) or ``missed`` (too late: see
    ``schedule``)."""

    deliver_at: datetime | None
    status: str


def schedule(*, starts_at: datetime, lead_minutes: int, availability: Availability, now: datetime) -> Schedule:
    """``deliver_at`` for a reminder at ``now``. If it is already past (the reminder was set,
    or the drop moved, within the lead time), the reminder goes out now if now is free and
    the drop has not started; otherwise it is ``missed`` (never sent inside quiet hours or
    outside the windows)."""
    if starts_at < now:
        return Schedule(None, "missed")
    at = deliver_at(starts_at=starts_at, lead_minutes=lead_minutes, availability=availability)
    if at is None:
        return Schedule(None, "unschedulable")
    if at >= _floor_minute(now):
        return Schedule(at, "scheduled")
    if availability.is_free(now):
        return Schedule(now.astimezone(UTC), "scheduled")
    return Schedule(None, "missed")
