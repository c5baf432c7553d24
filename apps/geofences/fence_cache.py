"""The fence cache: every active venue's prepared fence, hours, announcement and the runs
of its active geo offers, per process (docs/geofences.md, "Fence cache").

Pings and the venues list read venues from here, not from the database. Invalidation:

- every venue write (``services.venue_*``) bumps ``Venue.version`` and emits
  ``venue.updated``/``venue.deleted`` (a geo offer's save, ``coupons.geo_offer_save``,
  invalidates the same way without an event of the venue); on commit the writing process
  drops its own copy
  and bumps a generation number kept in Django's cache (Redis when configured), and the
  spine handler of those events bumps it again wherever it runs (a redelivered event only
  costs one extra reload);
- every other process reads that number at most once per ``GEO_FENCE_CACHE_CHECK_MS``
  (one Redis GET, ~0.1 ms) and reloads every venue when it changed. A change therefore
  reaches the other processes within that interval (1 s by default).

If the generation key is lost (Redis flushed or evicted), the next bump recreates it from
the clock in nanoseconds, never equal to a number a process holds, so they all reload.
"""

from __future__ import annotations

import threading
import time as _time
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache

from .geometry import Fence, fence_feature, fence_of
from .hours import is_open

GENERATION_KEY = "geofences:fence-generation"


@dataclass
class CachedVenue:
    id: int
    shop: int
    shop_slug: str
    name: str
    version: int
    fence: Fence
    feature: dict
    tz: ZoneInfo
    hours: list[tuple[int, time, time]]
    dwell_seconds: int
    announcement: str
    announce_radius_m: int
    event_starts_at: datetime | None
    # The active geo offers' (trigger, starts_at, ends_at): a ping skips looking for coupons
    # to issue at a venue with none due (``geo_offer_save`` invalidates the cache).
    offers: tuple[tuple[str, datetime, datetime | None], ...] = ()

    def issues(self, trigger: str, now: datetime) -> bool:
        """Whether an active offer of ``trigger`` runs at ``now`` (its cap is not known here:
        ``coupons_issue`` checks it)."""
        return any(t == trigger and starts <= now and (ends is None or ends > now) for t, starts, ends in self.offers)

    def open_now(self, now: datetime) -> bool:
        return is_open(self.hours, self.tz, now)

    def announces(self, now: datetime) -> bool:
        return bool(
            self.announcement and self.announce_radius_m > 0 and self.event_starts_at and self.event_starts_at > now
        )

    @property
    def reach_m(self) -> float:
        """Beyond this from the fence's centre a ping concerns the venue not at all (not
        within 1 km of its edge, not in its announce radius)."""
        return self.fence.bound_m + max(1000.0, float(self.announce_radius_m))


class _FenceCache:
    def __init__(self):
        self._lock = threading.Lock()
        self._venues: list[CachedVenue] | None = None
        self._by_id: dict[int, CachedVenue] = {}
        self._generation = None
        self._checked_at = 0.0
        self.loads = 0  # how many times this process loaded the venues (tests, bench)

    def drop(self) -> None:
        with self._lock:
            self._venues = None

    def venues(self) -> list[CachedVenue]:
        self._check_generation()
        venues = self._venues
        if venues is None:
            venues = self._load()
        return venues

    def get(self, venue_id: int) -> CachedVenue | None:
        self.venues()
        return self._by_id.get(venue_id)

    def _check_generation(self) -> None:
        now = _time.monotonic()
        if now - self._checked_at < settings.GEO_FENCE_CACHE_CHECK_MS / 1000:
            return
        self._checked_at = now
        generation = cache.get(GENERATION_KEY)
        if generation != self._generation:
            with self._lock:
                self._venues = None

    def _load(self) -> list[CachedVenue]:
        from django.db.models import Prefetch

        from .models import GeoOffer, Venue

        generation = cache.get(GENERATION_KEY)
        rows = (
            Venue.objects.filter(is_active=True, location__kind="venue")
            .select_related("location__shop")
            .prefetch_related("hours", Prefetch("offers", queryset=GeoOffer.objects.filter(is_active=True)))
            .order_by("pk")
        )
        venues = [_cached(v) for v in rows]
        with self._lock:
            self._venues = venues
            self._by_id = {v.id: v for v in venues}
            self._generation = generation
            self._checked_at = _time.monotonic()
            self.loads += 1
        return venues


def _cached(venue) -> CachedVenue:
    return CachedVenue(
        id=venue.pk,
        shop=venue.location.shop_id,
        shop_slug=venue.location.shop.slug,
        name=venue.location.name,
        version=venue.version,
        fence=fence_of(venue),
        feature=fence_feature(venue),
        tz=ZoneInfo(venue.time_zone),
        hours=[(h.weekday, h.opens, h.closes) for h in venue.hours.all()],
        dwell_seconds=venue.dwell_seconds,
        announcement=venue.announcement,
        announce_radius_m=venue.announce_radius_m,
        event_starts_at=venue.event_starts_at,
        offers=tuple((o.trigger, o.starts_at, o.ends_at) for o in venue.offers.all()),
    )


fence_cache = _FenceCache()


def bump_generation() -> None:
    """Tell every process its venues are out of date (their next check reloads)."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # no key yet, or lost: a value no process holds
        if not cache.add(GENERATION_KEY, _time.time_ns(), timeout=None):
            cache.incr(GENERATION_KEY)


def invalidate_on_commit() -> None:
    """Drop this process's fences and bump the generation, once the transaction commits."""
    from django.db import transaction

    def invalidate():
        fence_cache.drop()
        bump_generation()

    transaction.on_commit(invalidate)
