"""DRF throttles whose rates are read when used (DRF reads them at import), so settings
changes and tests' overrides apply. Kept apart from api.py: DRF imports throttle classes
while loading its own views."""

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle, UserRateThrottle

from .clientip import client_ip


class _ClientAddress:
    """Requests without a user are counted per client address as TRUSTED_PROXIES resolves it
    (creatorcommerce/clientip.py), not per DRF's NUM_PROXIES reading of X-Forwarded-For."""

    def get_ident(self, request):
        return client_ip(request)


class ScopedThrottle(_ClientAddress, ScopedRateThrottle):
    """DRF's scoped throttle, reading the rates when used rather than at import, so that a
    settings change (and a test's override) takes effect."""

    @property
    def THROTTLE_RATES(self):
        return api_settings.DEFAULT_THROTTLE_RATES


class AnonThrottle(_ClientAddress, AnonRateThrottle):
    """Per client address, for requests without a user (rates read at use, see ScopedThrottle)."""

    @property
    def THROTTLE_RATES(self):
        return api_settings.DEFAULT_THROTTLE_RATES


class UserThrottle(_ClientAddress, UserRateThrottle):
    @property
    def THROTTLE_RATES(self):
        return api_settings.DEFAULT_THROTTLE_RATES


class FixedWindowThrottle(ScopedThrottle):
    """The buy path's throttle: a counter per user and window (one round trip to Redis,
    ``RedisCache.count``; other caches: incr, then add on a window's first request) instead
    of DRF's request history (a read and a write of a list per request). Slightly coarser
    at window edges; the buy path is where the round trip shows."""

    def allow_request(self, request, view):
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        window = int(self.timer() // self.duration)
        key = f"{self.key}:{window}"
        count_in_window = getattr(self.cache, "count", None)  # creatorcommerce.cache.RedisCache
        if count_in_window is not None:
            count = count_in_window(key, self.duration + 1)
        else:
            try:
                count = self.cache.incr(key)
            except ValueError:  # first request of the window
                count = 1 if self.cache.add(key, 1, self.duration + 1) else self.cache.incr(key)
        self._window_end = (window + 1) * self.duration
        return count <= self.num_requests

    def wait(self):
        return max(0.0, self._window_end - self.timer())
