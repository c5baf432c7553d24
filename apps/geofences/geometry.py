"""Fences: validation and distances in metres (docs/geofences.md, "Geometry").

A fence is a GeoJSON Polygon or MultiPolygon (``[lon, lat]`` positions, holes allowed) or a
circle (``center`` ``[lon, lat]`` and ``radius_m``).

Polygons are measured in a local plane: each fence is projected once, equirectangularly
around the centre of its bounding box (x = R·Δλ·cos φ0, y = R·Δφ), and shapely works in
that plane in metres. The projection's scale along x is off by cos φ/cos φ0 - 1 ≈ tan φ0·Δφ
at a point Δφ north or south of the centre, so a distance d measured at most D metres from
the centre is off by at most about d·tan|φ0|·D/R (R = 6,371 km) plus the plane-vs-sphere
term d·(D/R)²: for a fence 5 km across at 60° latitude and a ping 1 km from its edge, under
0.2 % (2 m per km); at 85° with D = 5 km, under 1.1 %. Fences are limited to
``MAX_EXTENT_M`` across and to latitudes within ±``MAX_ABS_LAT`` so that the bound holds.
Circles are measured on the sphere: the haversine distance to the centre minus the radius.

Antimeridian and poles: a fence whose longitudes span more than 180° (a polygon drawn
across the antimeridian in plain GeoJSON, or parts on both sides of it) or that reaches
beyond ±85° latitude is refused with ``fence_unsupported``: no pop-up venue is there, and
accepting them would need splitting and a polar projection for nothing. A fence *near* the
antimeridian works: a ping's longitude difference to the fence's centre is wrapped into
[-180°, 180°), so a ping at -179.999° is metres from a fence at 179.999°.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.validation import explain_validity

from .exceptions import FenceUnsupported, InvalidFence

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
MAX_ABS_LAT = 85.0
MAX_EXTENT_M = 50_000.0
MAX_POSITIONS = 5_000
MIN_RADIUS_M = 1.0
MAX_RADIUS_M = 50_000.0
_RAD = math.pi / 180


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = lat1 * _RAD, lat2 * _RAD
    dphi = p2 - p1
    dlmb = (lon2 - lon1) * _RAD
    a = math.sin(dphi / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _wrap(dlon: float) -> float:
    """A longitude difference in [-180, 180)."""
    return (dlon + 180.0) % 360.0 - 180.0


# --- validation -------------------------------------------------------------------------


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidFence(f"{what} must be a finite number.")
    return float(value)


def _position(value, where: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) not in (2, 3):
        raise InvalidFence(f"{where}: a position is [lon, lat].")
    lon, lat = _number(value[0], f"{where}: longitude"), _number(value[1], f"{where}: latitude")
    if not -180.0 <= lon <= 180.0:
        raise InvalidFence(f"{where}: longitude {lon} is out of range (-180 to 180).")
    if not -90.0 <= lat <= 90.0:
        raise InvalidFence(f"{where}: latitude {lat} is out of range (-90 to 90).")
    return lon, lat


def _ring(value, where: str) -> list[tuple[float, float]]:
    if not isinstance(value, (list, tuple)):
        raise InvalidFence(f"{where}: a ring is a list of positions.")
    if len(value) > MAX_POSITIONS:
        raise InvalidFence(f"{where}: at most {MAX_POSITIONS} positions.")
    ring = [_position(p, f"{where}, position {i + 1}") for i, p in enumerate(value)]
    if len(ring) < 4:
        raise InvalidFence(f"{where}: a ring needs at least 4 positions (3 corners and the first again).")
    if ring[0] != ring[-1]:
        raise InvalidFence(f"{where}: the ring is not closed (its last position must repeat the first).")
    if len(set(ring)) < 3:
        raise InvalidFence(f"{where}: a ring needs at least 3 distinct corners.")
    return ring


def _polygon(value, where: str) -> list[list[tuple[float, float]]]:
    if not isinstance(value, (list, tuple)) or not value:
        raise InvalidFence(f"{where}: a polygon is a list of rings (the outline, then any holes).")
    return [_ring(r, f"{where}, {'outline' if i == 0 else f'hole {i}'}") for i, r in enumerate(value)]


def _check_reach(lons: list[float], lats: list[float]) -> None:
    if max(lons) - min(lons) > 180.0:
        raise FenceUnsupported(
            "The fence spans more than 180° of longitude (it crosses the antimeridian or is far too large); "
            "fences across the antimeridian are not supported."
        )
    if max(abs(x) for x in lats) > MAX_ABS_LAT:
        raise FenceUnsupported(f"Fences beyond ±{MAX_ABS_LAT:g}° latitude (near the poles) are not supported.")


def validate_geojson(geometry) -> dict:
    """The fence ``geometry`` (a GeoJSON Polygon or MultiPolygon; a Feature holding one is
    unwrapped) normalised to plain lists, or ``InvalidFence``/``FenceUnsupported`` saying why."""
    if isinstance(geometry, dict) and geometry.get("type") == "Feature":
        geometry = geometry.get("geometry")
    if not isinstance(geometry, dict):
        raise InvalidFence("The fence must be a GeoJSON object with a type and coordinates.")
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Polygon":
        polygons = [_polygon(coords, "polygon")]
    elif kind == "MultiPolygon":
        if not isinstance(coords, (list, tuple)) or not coords:
            raise InvalidFence("A MultiPolygon is a non-empty list of polygons.")
        polygons = [_polygon(p, f"polygon {i + 1}") for i, p in enumerate(coords)]
    else:
        raise InvalidFence(f"The fence must be a Polygon or a MultiPolygon, not {kind!r}.")
    positions = [p for polygon in polygons for ring in polygon for p in ring]
    _check_reach([p[0] for p in positions], [p[1] for p in positions])
    lon0, lat0 = _origin(positions)
    shape = _shape(polygons, lon0, lat0)
    if not shape.is_valid:
        raise InvalidFence(f"The fence is not a valid polygon: {_invalid_reason(shape, lon0, lat0)}.")
    extent = _extent(shape)
    if extent > MAX_EXTENT_M:
        raise FenceUnsupported(f"The fence is {extent / 1000:.0f} km across; at most {MAX_EXTENT_M / 1000:.0f} km.")
    rings = [[[[lon, lat] for lon, lat in ring] for ring in polygon] for polygon in polygons]
    if kind == "Polygon":
        return {"type": "Polygon", "coordinates": rings[0]}
    return {"type": "MultiPolygon", "coordinates": rings}


def _invalid_reason(shape, lon0: float, lat0: float) -> str:
    """shapely's reason, with its place (metres in the local plane) given back as the
    ``[lon, lat]`` the creator wrote, e.g. "the outline crosses itself near [13.41285, 52.539]"."""
    reason = explain_validity(shape)
    match = re.fullmatch(r"(.*?)\[(\S+) (\S+)\]", reason)
    if match is None:
        return reason
    what, x, y = match.group(1), float(match.group(2)), float(match.group(3))
    lon = _wrap(lon0 + x / (EARTH_RADIUS_M * _RAD * math.cos(lat0 * _RAD)))
    lat = lat0 + y / (EARTH_RADIUS_M * _RAD)
    if what in ("Self-intersection", "Ring Self-intersection"):
        what = "the outline crosses itself"
    return f"{what} near [{_degrees(lon)}, {_degrees(lat)}]"


def _degrees(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def validate_circle(center_lon, center_lat, radius_m) -> tuple[float, float, float]:
    if center_lon is None or center_lat is None or radius_m is None:
        raise InvalidFence("A circle needs a centre (longitude and latitude) and a radius in metres.")
    lon, lat = _position([center_lon, center_lat], "centre")
    radius = _number(radius_m, "radius_m")
    if not MIN_RADIUS_M <= radius <= MAX_RADIUS_M:
        raise InvalidFence(f"radius_m must be between {MIN_RADIUS_M:g} and {MAX_RADIUS_M:g} metres.")
    reach_deg = radius / EARTH_RADIUS_M / _RAD
    if abs(lat) + reach_deg > MAX_ABS_LAT:
        raise FenceUnsupported(f"Fences beyond ±{MAX_ABS_LAT:g}° latitude (near the poles) are not supported.")
    return lon, lat, radius


# --- the prepared fence -----------------------------------------------------------------


def _origin(positions) -> tuple[float, float]:
    lons = [p[0] for p in positions]
    lats = [p[1] for p in positions]
    return (min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2


def _project(lon, lat, lon0, lat0, kx) -> tuple[float, float]:
    return kx * _wrap(lon - lon0), EARTH_RADIUS_M * _RAD * (lat - lat0)


def _shape(polygons, lon0, lat0):
    kx = EARTH_RADIUS_M * _RAD * math.cos(lat0 * _RAD)
    parts = [
        Polygon(
            [_project(lon, lat, lon0, lat0, kx) for lon, lat in polygon[0]],
            [[_project(lon, lat, lon0, lat0, kx) for lon, lat in hole] for hole in polygon[1:]],
        )
        for polygon in polygons
    ]
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def _extent(shape) -> float:
    minx, miny, maxx, maxy = shape.bounds
    return math.hypot(maxx - minx, maxy - miny)


@dataclass
class Fence:
    """One venue's fence, ready to measure: ``signed_m`` is the distance in metres from a
    point to the fence's edge, negative inside."""

    kind: str
    lon0: float
    lat0: float
    bound_m: float  # every point of the fence is within this of (lon0, lat0)
    radius_m: float = 0.0
    _kx: float = 0.0
    _shape: object = None
    _boundary: object = None
    _cos0: float = field(default=1.0, repr=False)

    @classmethod
    def polygon(cls, geometry: dict) -> Fence:
        kind = geometry["type"]
        polygons = [geometry["coordinates"]] if kind == "Polygon" else geometry["coordinates"]
        positions = [tuple(p[:2]) for polygon in polygons for ring in polygon for p in ring]
        lon0, lat0 = _origin(positions)
        shape = _shape([[[tuple(p[:2]) for p in ring] for ring in polygon] for polygon in polygons], lon0, lat0)
        shapely.prepare(shape)
        boundary = shape.boundary
        shapely.prepare(boundary)
        kx = EARTH_RADIUS_M * _RAD * math.cos(lat0 * _RAD)
        bound = max(math.hypot(x, y) for x, y in shapely.get_coordinates(shape))
        return cls(kind="polygon", lon0=lon0, lat0=lat0, bound_m=bound, _kx=kx, _shape=shape, _boundary=boundary)

    @classmethod
    def circle(cls, lon: float, lat: float, radius_m: float) -> Fence:
        return cls(kind="circle", lon0=lon, lat0=lat, bound_m=radius_m, radius_m=radius_m, _cos0=math.cos(lat * _RAD))

    def rough_m(self, lon: float, lat: float) -> float:
        """A cheap distance from the point to the fence's centre (equirectangular), for
        skipping fences far away; good to a few percent at the distances it is used for."""
        dx = _wrap(lon - self.lon0) * self._cos_mid(lat)
        return EARTH_RADIUS_M * _RAD * math.hypot(dx, lat - self.lat0)

    def _cos_mid(self, lat: float) -> float:
        return math.cos((lat + self.lat0) * 0.5 * _RAD)

    def signed_m(self, lon: float, lat: float) -> float:
        """Metres from the point to the fence's edge: negative inside, positive outside."""
        if self.kind == "circle":
            return haversine_m(self.lon0, self.lat0, lon, lat) - self.radius_m
        point = Point(_project(lon, lat, self.lon0, self.lat0, self._kx))
        edge = self._boundary.distance(point)
        return -edge if self._shape.contains(point) else edge

    def distance_m(self, lon: float, lat: float) -> float:
        """Metres from the point to the fence (0 inside)."""
        return max(0.0, self.signed_m(lon, lat))


def fence_of(venue) -> Fence:
    if venue.fence_kind == "circle":
        return Fence.circle(venue.center_lon, venue.center_lat, venue.radius_m)
    return Fence.polygon(venue.fence)


def fence_feature(venue) -> dict:
    """The fence as a GeoJSON Feature; a circle is a Point with ``properties.radius_m``."""
    if venue.fence_kind == "circle":
        return {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [venue.center_lon, venue.center_lat]},
            "properties": {"radius_m": venue.radius_m},
        }
    return {"type": "Feature", "geometry": venue.fence, "properties": {}}


def classify(signed_m: float, accuracy_m: float) -> str:
    """Where a ping's accuracy circle lies: ``inside`` (entirely), ``outside`` (entirely) or
    ``straddling`` the edge (docs/geofences.md, "Hysteresis")."""
    if signed_m <= -accuracy_m:
        return "inside"
    if signed_m >= accuracy_m:
        return "outside"
    return "straddling"
