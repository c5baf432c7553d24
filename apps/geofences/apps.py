from django.apps import AppConfig


class GeofencesConfig(AppConfig):
    name = "apps.geofences"
    label = "geofences"
    verbose_name = "Pop-up venues and geofences"
