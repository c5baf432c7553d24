"""The exact events the geofences' services send (docs/events.md), each checked against
its declared schema by ``captured_events``."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apps.geofences.services import geo_ping, presence_beat, venue_create, venue_delete, venue_update
from tests.helpers import captured_events

from .conftest import NOON, offset, square

pytestmark = pytest.mark.django_db


def _ping(user, north=0.0, at=NOON):
    lat, lon = offset(north)
    geo_ping(user=user, lat=lat, lon=lon, accuracy_m=5, at=at, now=at)


def test_venue_writes(creator):
    shop = creator.shop.pk
    with captured_events() as events:
        venue = venue_create(
            shop=creator.shop, name="Hall", fence_kind="polygon", fence={"type": "Polygon", "coordinates": [square(50)]}
        )
        venue_update(venue=venue, announcement="Soon")
        venue_update(venue=venue, is_active=False)
        pk = venue.pk
        venue_delete(venue=venue)
    group = [f"shop.{shop}"]
    assert events == [
        ("venue.updated", {"venue": pk, "shop": shop, "version": 1, "is_active": True}, group),
        ("venue.updated", {"venue": pk, "shop": shop, "version": 2, "is_active": True}, group),
        ("venue.updated", {"venue": pk, "shop": shop, "version": 3, "is_active": False}, group),
        ("venue.deleted", {"venue": pk, "shop": shop}, group),
    ]


def test_enter_dwell_exit(viewer, venue):
    group = [f"shop.{venue.location.shop_id}"]
    body = {"venue": venue.pk, "shop": venue.location.shop_id, "user": viewer.pk}
    with captured_events() as events:
        _ping(viewer)
        _ping(viewer, at=NOON + timedelta(seconds=60))
        presence_beat(now=NOON + timedelta(seconds=300))
        _ping(viewer, north=500, at=NOON + timedelta(seconds=400))
    assert events == [
        ("venue.entered", {**body, "at": "2026-06-01T10:00:00Z"}, group),
        ("venue.dwelled", {**body, "at": "2026-06-01T10:05:00Z"}, group),
        ("venue.exited", {**body, "at": "2026-06-01T10:06:40Z"}, group),
    ]
