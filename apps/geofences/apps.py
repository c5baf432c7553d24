from django.apps import AppConfig


class GeofencesConfig(AppConfig):
    name = "apps.geofences"
    label = "geofences"
    verbose_name = "Pop-up venues and geofences"

    def ready(self):
        from . import pricing  # noqa: F401  (register the coupon offer provider and counter sources)
