"""The calendars app's errors (docs/calendars.md, "Errors")."""

from creatorcommerce.errors import Conflict, DomainError, NotFound, PermissionDenied


class InvalidPreferences(DomainError):
    """A preference that cannot be saved; ``code`` says which rule it breaks and ``field``
    (a detail) where: ``invalid_time_zone``, ``invalid_time``, ``invalid_quiet_hours``,
    ``invalid_window``, ``overlapping_windows``, ``invalid_channel``, ``invalid_lead_minutes``."""

    code = "invalid_preferences"
    message = "The preferences are invalid."


class ShopNotFound(NotFound):
    code = "shop_not_found"
    message = "No such shop."


class StreamNotScheduled(Conflict):
    code = "stream_not_scheduled"
    message = "Reminders are only for drops that are scheduled and have not started."


class NotificationNotFound(NotFound):
    code = "notification_not_found"
    message = "No such notification."


class CalendarConsentRequired(Conflict):
    code = "calendar_consent_required"
    message = 'Opt in to calendars first: PUT /api/v1/me/consents/calendar/ {"granted": true}.'


class NotYourShop(PermissionDenied):
    code = "not_your_shop"
    message = "Only the shop's creator and staff see its audience."
