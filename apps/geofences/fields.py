"""The fence's model field: django-geojson's GeometryField (GeoJSON in a JSON column).

django-geojson offers django-leaflet's form widget when django-leaflet is importable, and
that widget imports GeoDjango, which needs the GDAL system library. We use django-leaflet
for Leaflet's files and its settings only (the admin's fence map is our own small widget,
apps/geofences/widgets.py), so that a fresh machine needs no GDAL: when GeoDjango cannot
load, django-geojson is told django-leaflet's widget is not there (``sys.modules[name] =
None`` makes that one import fail with ImportError, which django-geojson expects).
"""

from __future__ import annotations

import sys

from django.core.exceptions import ImproperlyConfigured

try:
    import leaflet.forms.widgets  # noqa: F401
except (ImportError, ImproperlyConfigured, OSError):  # no GDAL: GeoDjango cannot load
    sys.modules["leaflet.forms.widgets"] = None  # type: ignore[assignment]

from djgeojson.fields import GeometryField

__all__ = ["GeometryField"]
