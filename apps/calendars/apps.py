from django.apps import AppConfig


class CalendarsConfig(AppConfig):
    name = "apps.calendars"
    label = "calendars"
    verbose_name = "Calendars: preferences, follows, reminders"

    def ready(self):
        from apps.consents.registry import consent_eraser, consent_granter
        from apps.streams.panels import scheduling_panel

        from .admin import audience_panel
        from .services import feed_erase, feed_on_grant

        # Granting calendar consent issues the private feed; revoking deletes its token
        # (docs/calendars.md, "Consent").
        consent_granter("calendar")(feed_on_grant)
        consent_eraser("calendar")(feed_erase)
        # The audience heatmap on the drop's admin page (docs/calendars.md, "Audience heatmap").
        scheduling_panel(audience_panel)
