"""DRF throttles whose rates are read when used (DRF reads them at import), so settings
changes and tests' overrides apply. Kept apart from api.py: DRF imports throttle classes
while loading its own views."""

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle, UserRateThrottle


class ScopedThrottle(ScopedRateThrottle):
    """DRF's scoped throttle, reading the rates when used rather than at import, so that a
    settings change (and a test's override) takes effect."""

    @property
    def THROTTLE_RATES(self):
        return api_settings.DEFAULT_THROTTLE_RATES


class AnonThrottle(AnonRateThrottle):
    """Per client address, for requests without a user (rates read at use, see ScopedThrottle)."""

    @property
    def THROTTLE_RATES(self):
        return api_settings.DEFAULT_THROTTLE_RATES


class UserThrottle(UserRateThrottle):
    @property
    def THROTTLE_RATES(self):
        return api_settings.DEFAULT_THROTTLE_RATES
