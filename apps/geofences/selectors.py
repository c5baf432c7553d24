"""Reads of the geofences app (docs/geofences.md)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from creatorcommerce.fields import iso_utc

from .fence_cache import fence_cache


def venues_list(*, near: tuple[float, float] | None = None, radius_m: float | None = None, now=None) -> list[dict]:
    """Every active venue (``GET /api/v1/venues/``), from the fence cache; with ``near``
    (lat, lon), only those whose fence is within ``radius_m`` of it, nearest first, each
    with ``distance_m`` to the fence's edge (0 inside)."""
    now = now or timezone.now()
    out = []
    for venue in fence_cache.venues():
        row = {
            "id": venue.id,
            "name": venue.name,
            "shop": venue.shop_slug,
            "fence": venue.feature,
            "open_now": venue.open_now(now),
            "announcement": _announcement(venue, now),
        }
        if near is not None:
            lat, lon = near
            if venue.fence.rough_m(lon, lat) > (venue.fence.bound_m + radius_m) * 1.05:
                continue
            distance = venue.fence.distance_m(lon, lat)
            if distance > radius_m:
                continue
            row["distance_m"] = round(distance, 1)
        out.append(row)
    if near is not None:
        out.sort(key=lambda row: (row["distance_m"], row["id"]))
    return out


def _announcement(venue, now: datetime) -> dict | None:
    if not venue.announces(now):
        return None
    return {
        "text": venue.announcement,
        "starts_at": iso_utc(venue.event_starts_at),
        "radius_m": venue.announce_radius_m,
    }
