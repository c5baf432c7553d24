from django.apps import AppConfig


class GeofencesConfig(AppConfig):
    name = "apps.geofences"
    label = "geofences"
    verbose_name = "Pop-up venues and geofences"

    def ready(self):
        from apps.consents.registry import consent_eraser

        from .services import location_erase

        # Revoking location consent erases every stored position and presence of the user.
        consent_eraser("location")(location_erase)

        from . import pricing  # noqa: F401  (register the coupon offer provider and counter sources)
