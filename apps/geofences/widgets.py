"""The admin's fence map (docs/geofences.md, "Admin map"): the GeoJSON textarea stays the
real form field (pasting GeoJSON works without JavaScript); ``static/js/fence-map.js`` adds a
Leaflet map above it that shows the fence and lets the creator draw or edit a polygon with
Leaflet.draw, writing the result back into the textarea. Leaflet's files are served by us
(django-leaflet's static files, settings.STATICFILES_DIRS); the tiles come from
``GEOFENCES_TILE_URL`` when it is set, and with none the map is a blank base showing the
fence, so it works offline at a venue."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings


class FenceMapWidget(forms.Textarea):
    template_name = "geofences/widgets/fence_map.html"

    class Media:
        css = {"all": ("leaflet/leaflet.css", "leaflet/draw/leaflet.draw.css")}
        js = ("leaflet/leaflet.js", "leaflet/draw/leaflet.draw.js", "js/fence-map.js")

    def __init__(self, attrs=None):
        super().__init__(attrs={"rows": 8, "cols": 80, "class": "vLargeTextField fence-geojson", **(attrs or {})})

    def format_value(self, value):
        if value in (None, ""):
            return ""
        if isinstance(value, str):
            return value
        return json.dumps(value)

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["map"] = {
            "tile_url": settings.GEOFENCES_TILE_URL,
            "attribution": settings.GEOFENCES_TILE_ATTRIBUTION,
        }
        return context
