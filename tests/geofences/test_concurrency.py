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
