"""Fixtures of the geofences tests: a creator's shop with a square venue in Berlin (200 m
across, a 300 s dwell), viewers with and without location consent, and helpers to place
a point a given number of metres from the venue's centre.

The fence cache is per process and dropped on commit; tests that do not commit (the
default rolled-back tests) drop it themselves after writing venues (``fresh``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from apps.consents.services import consent_set
from apps.geofences.fence_cache import fence_cache
from apps.geofences.services import venue_create
from tests.factories import CreatorFactory, UserFactory

LAT0, LON0 = 52.52, 13.405
M_PER_DEG = 6_371_008.8 * math.pi / 180
# A Monday noon in Berlin (CEST), far from any DST change.
NOON = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def offset(north: float = 0.0, east: float = 0.0, *, lat0=LAT0, lon0=LON0) -> tuple[float, float]:
    """(lat, lon) ``north`` metres north and ``east`` metres east of (lat0, lon0)."""
    return lat0 + north / M_PER_DEG, lon0 + east / (M_PER_DEG * math.cos(math.radians(lat0)))


def square(half_m: float, *, lat0=LAT0, lon0=LON0) -> list[list[float]]:
    """A closed ring: a square ``2 * half_m`` across, centred on (lat0, lon0)."""
    corners = [(-half_m, -half_m), (-half_m, half_m), (half_m, half_m), (half_m, -half_m), (-half_m, -half_m)]
    ring = []
    for north, east in corners:
        lat, lon = offset(north, east, lat0=lat0, lon0=lon0)
        ring.append([lon, lat])
    return ring


def fresh():
    fence_cache.drop()


@pytest.fixture(autouse=True)
def _fresh_fences():
    fence_cache.drop()
    yield
    fence_cache.drop()


@pytest.fixture
def creator(db):
    return CreatorFactory()


@pytest.fixture
def venue(creator):
    v = venue_create(
        shop=creator.shop,
        name="Pop-up Mitte",
        fence_kind="polygon",
        fence={"type": "Polygon", "coordinates": [square(100)]},
        time_zone="Europe/Berlin",
        dwell_seconds=300,
    )
    fresh()
    return v


@pytest.fixture
def viewer(db):
    user = UserFactory()
    consent_set(user=user, kind="location", granted=True)
    return user


@pytest.fixture
def other_viewer(db):
    user = UserFactory()
    consent_set(user=user, kind="location", granted=True)
    return user


@pytest.fixture
def stranger(db):
    """A viewer who never granted location consent."""
    return UserFactory()
