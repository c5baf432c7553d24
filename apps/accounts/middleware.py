"""Pages are shown in the signed-in user's own time zone.

For every page request (not the JSON API, hooks or allauth's headless endpoints, whose
times stay in UTC as documented), the user's ``time_zone`` is activated, so the admin shows
datetimes in it and reads the datetimes typed into its forms in it: a creator in New York
who schedules a drop for 20:00 gets 20:00 New York time. Anonymous visitors get
``settings.TIME_ZONE``. See docs/architecture.md, "Time zones".
"""

from __future__ import annotations

import zoneinfo

from django.utils import timezone

from creatorcommerce.api import is_api_request


class UserTimeZoneMiddleware:
    """Put right after AuthenticationMiddleware (it reads ``request.user``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = None
        if not is_api_request(request):
            user = request.user
            name = getattr(user, "time_zone", "") if user.is_authenticated else ""
            try:
                zone = zoneinfo.ZoneInfo(name) if name else None
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                zone = None  # a zone removed from the tz database since it was chosen
        if zone is None:
            timezone.deactivate()
            return self.get_response(request)
        timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
