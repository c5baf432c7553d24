"""Real concurrency on PostgreSQL: one viewer's simultaneous pings enter once, and a
revocation racing pings leaves nothing of the viewer behind."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.consents.services import consent_set
from apps.geofences.models import Position, Presence
from apps.geofences.services import geo_ping
from tests.helpers import captured_events, run_concurrently

from .conftest import LAT0, LON0

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _ping(user):
    try:
        return geo_ping(user=user, lat=LAT0, lon=LON0, accuracy_m=5)
    finally:
        connection.close()


def test_simultaneous_pings_of_one_viewer_enter_once(viewer, venue):
    with captured_events() as events:
        run_concurrently(_ping, [(viewer,)] * 16)
    assert [e[0] for e in events] == ["venue.entered"]
    assert Presence.objects.filter(user=viewer).count() == 1
    assert Position.objects.filter(user=viewer).count() == 1


def test_revoking_while_pinging_leaves_nothing(viewer, venue):
    from apps.consents.exceptions import ConsentRequired

    def ping_or_refused(user):
        try:
            return _ping(user)
        except ConsentRequired:
            return "refused"

    def revoke(user):
        try:
            return consent_set(user=user, kind="location", granted=False)
        finally:
            connection.close()

    jobs = [(ping_or_refused, viewer)] * 12 + [(revoke, viewer)]
    run_concurrently(lambda fn, user: fn(user), jobs)
    assert Position.objects.filter(user=viewer).count() == 0
    assert Presence.objects.filter(user=viewer).count() == 0


def _waiting_for_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def test_a_ping_racing_the_beat_dwells_once(viewer, venue):
    """The beat holds a presence (``FOR UPDATE``) and dwells it while the viewer's ping for
    the same moment comes in: the ping waits for the beat and sees the dwell, instead of
    reading the presence before the beat's commit and dwelling it a second time (two
    ``venue.dwelled``). Made deterministic: the beat's transaction stops after its lock
    until PostgreSQL shows the ping waiting for a lock."""
    import threading
    import time
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from apps.geofences.services import presence_beat
    from tests.helpers import WAIT, events_since, last_event_id

    entered = timezone.now() - timedelta(seconds=venue.dwell_seconds + 5)
    geo_ping(user=viewer, lat=LAT0, lon=LON0, accuracy_m=5, at=entered, now=entered)
    presence = Presence.objects.get(user=viewer)
    now = timezone.now()
    mark = last_event_id()
    ping_pid, ping_started, locked, results = [], threading.Event(), threading.Event(), {}

    def beat():
        try:
            with transaction.atomic():
                Presence.objects.select_for_update().get(pk=presence.pk)
                locked.set()
                assert ping_started.wait(WAIT)
                deadline = time.monotonic() + WAIT
                while time.monotonic() < deadline and not _waiting_for_a_lock(ping_pid[0]):
                    time.sleep(0.01)  # polling PostgreSQL's view of the ping, not waiting out a race
                results["beat"] = presence_beat(now=now)
        finally:
            connection.close()

    def ping():
        try:
            assert locked.wait(WAIT)
            connection.ensure_connection()
            ping_pid.append(connection.connection.info.backend_pid)
            ping_started.set()
            results["ping"] = geo_ping(user=viewer, lat=LAT0, lon=LON0, accuracy_m=5, at=now, now=now)
        finally:
            connection.close()

    threads = [threading.Thread(target=beat), threading.Thread(target=ping)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(3 * WAIT)
    assert results["beat"] == {"dwelled": 1, "exited": 0}
    assert results["ping"]["venues"][0]["dwelling"] is True
    assert [e.type for e in events_since(mark, "venue.dwelled", "venue.entered", "venue.exited")] == ["venue.dwelled"]
