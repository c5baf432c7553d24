"""Opening hours in the venue's time zone (docs/geofences.md, "Opening hours")."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo


def is_open(hours: list[tuple[int, time, time]], tz: ZoneInfo, now: datetime) -> bool:
    """Whether a venue with these ``(weekday, opens, closes)`` rows is open at ``now`` (aware).

    Rows are wall-clock times in ``tz``: ``now`` is converted to the venue's local time
    (zoneinfo applies the offset in force then, so DST changes need nothing special), and a
    row whose ``closes`` is before its ``opens`` runs past midnight into the next day (its
    early-morning part belongs to the weekday it started on). No rows: always open. On the
    night clocks go forward, a wall time that does not exist is simply never reached; on
    the night they go back, the repeated hour is open or closed by its wall time both times.
    """
    if not hours:
        return True
    local = now.astimezone(tz)
    weekday, clock = local.weekday(), local.time().replace(tzinfo=None)
    yesterday = (weekday - 1) % 7
    for day, opens, closes in hours:
        if opens < closes:
            if day == weekday and opens <= clock < closes:
                return True
        else:  # past midnight
            if day == weekday and clock >= opens:
                return True
            if day == yesterday and clock < closes:
                return True
    return False
