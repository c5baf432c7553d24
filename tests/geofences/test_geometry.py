"""Fences: validation (field errors with the reason) and distances in metres
(docs/geofences.md, "Geometry", "Antimeridian and poles"). No database."""

from __future__ import annotations

import pytest

from apps.geofences.exceptions import FenceUnsupported, InvalidFence
from apps.geofences.geometry import Fence, classify, haversine_m, validate_circle, validate_geojson

from .conftest import LAT0, LON0, offset, square


def _polygon(*rings):
    return {"type": "Polygon", "coordinates": list(rings)}


def _fence(geometry):
    return Fence.polygon(validate_geojson(geometry))


def _signed(fence, north=0.0, east=0.0, **origin):
    lat, lon = offset(north, east, **origin)
    return fence.signed_m(lon, lat)


def test_square_distances_are_metres_to_the_edge():
    fence = _fence(_polygon(square(100)))
    assert _signed(fence) == pytest.approx(-100, abs=0.5)
    assert _signed(fence, east=150) == pytest.approx(50, abs=0.5)
    assert _signed(fence, north=-300) == pytest.approx(200, abs=1)
    assert _signed(fence, east=95) == pytest.approx(-5, abs=0.2)
    assert fence.distance_m(*reversed(offset(east=95))) == 0


def test_polygon_with_a_hole_the_hole_is_outside():
    fence = _fence(_polygon(square(100), list(reversed(square(30)))))
    assert _signed(fence) == pytest.approx(30, abs=0.5)  # the hole's centre: outside, 30 m from its edge
    assert _signed(fence, east=60) < 0  # between the hole and the outline
    assert _signed(fence, east=25) > 0  # in the hole
    assert _signed(fence, east=120) == pytest.approx(20, abs=0.5)


def test_multipolygon_each_part_counts():
    far = offset(east=2000)
    geometry = {
        "type": "MultiPolygon",
        "coordinates": [[square(50)], [square(50, lat0=far[0], lon0=far[1])]],
    }
    fence = _fence(geometry)
    assert _signed(fence) < 0
    assert _signed(fence, east=2000) < 0
    assert _signed(fence, east=1000) == pytest.approx(950, abs=2)


@pytest.mark.parametrize("metres", [-3, -1, 1, 3])
def test_circle_a_few_metres_in_and_out(metres):
    fence = Fence.circle(LON0, LAT0, 50)
    lat, lon = offset(north=50 + metres)
    assert fence.signed_m(lon, lat) == pytest.approx(metres, abs=0.05)
    assert (fence.distance_m(lon, lat) == 0) == (metres < 0)


def test_polygon_edge_a_few_metres_in_and_out():
    fence = _fence(_polygon(square(100)))
    for metres in (-3, -1, 1, 3):
        assert _signed(fence, north=100 + metres) == pytest.approx(metres, abs=0.1)


def test_hysteresis_classes():
    assert classify(-30, 20) == "inside"
    assert classify(30, 20) == "outside"
    assert classify(-10, 20) == "straddling"
    assert classify(10, 20) == "straddling"
    assert classify(0, 0) == "inside"


def test_haversine_known_distance():
    # Berlin - Paris, about 878 km.
    assert haversine_m(13.405, 52.52, 2.3522, 48.8566) == pytest.approx(877_500, rel=0.002)


def test_projection_error_stays_within_the_documented_bound():
    """At 60° north, a point 1 km from a 5 km fence: plane distance vs the sphere's."""
    lat0, lon0 = 60.0, 10.0
    fence = _fence(_polygon(square(2500, lat0=lat0, lon0=lon0)))
    lat, lon = offset(north=3500, lat0=lat0, lon0=lon0)
    assert fence.signed_m(lon, lat) == pytest.approx(1000, rel=0.002)


@pytest.mark.parametrize(
    ("geometry", "reason"),
    [
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}, "crosses itself"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [0, 0.001], [0.001, 0.001], [0.001, 0]]]}, "not closed"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [0, 0.001], [0, 0]]]}, "at least 4"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [0, 91], [1, 91], [0, 0]]]}, "out of range"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [181, 0], [181, 1], [0, 0]]]}, "out of range"),
        ({"type": "Polygon", "coordinates": [[["0", 0], [0, 1], [1, 1], ["0", 0]]]}, "finite number"),
        ({"type": "Polygon", "coordinates": [[[True, 0], [0, 1], [1, 1], [True, 0]]]}, "finite number"),
        ({"type": "Point", "coordinates": [0, 0]}, "Polygon or a MultiPolygon"),
        ({"type": "Polygon", "coordinates": "x"}, "list of rings"),
        ({"type": "MultiPolygon", "coordinates": []}, "non-empty"),
        ("not an object", "GeoJSON object"),
        (None, "GeoJSON object"),
    ],
)
def test_invalid_polygons_are_refused_with_the_reason(geometry, reason):
    with pytest.raises(InvalidFence) as caught:
        validate_geojson(geometry)
    assert caught.value.code == "invalid_fence"
    assert reason in caught.value.message


def test_a_crossing_is_placed_in_the_creators_longitude_and_latitude():
    # A bow tie in Berlin: the outline crosses itself at its middle, which the message gives
    # as [lon, lat] (not as metres in the local plane, "Self-intersection[0 0]").
    bow = [[13.4118, 52.5384], [13.4140, 52.5396], [13.4140, 52.5384], [13.4118, 52.5396], [13.4118, 52.5384]]
    with pytest.raises(InvalidFence) as caught:
        validate_geojson({"type": "Polygon", "coordinates": [bow]})
    assert caught.value.message.endswith(": the outline crosses itself near [13.4129, 52.539].")


def test_overlapping_multipolygon_parts_are_refused():
    geometry = {"type": "MultiPolygon", "coordinates": [[square(100)], [square(50)]]}
    with pytest.raises(InvalidFence):
        validate_geojson(geometry)


def test_a_feature_is_unwrapped_and_3d_positions_accepted():
    ring = [[lon, lat, 0] for lon, lat in square(10)]
    assert validate_geojson({"type": "Feature", "geometry": _polygon(ring), "properties": {}})["type"] == "Polygon"


def test_antimeridian_crossing_is_refused_near_it_is_handled():
    across = _polygon([[179.999, 0], [-179.999, 0], [-179.999, 0.001], [179.999, 0.001], [179.999, 0]])
    with pytest.raises(FenceUnsupported) as caught:
        validate_geojson(across)
    assert caught.value.code == "fence_unsupported"
    # A fence touching the antimeridian from the east works, and a ping just across it
    # (longitude -179.9999) is metres away, not the whole world.
    near = _fence(_polygon([[179.998, 0], [180, 0], [180, 0.001], [179.998, 0.001], [179.998, 0]]))
    assert near.signed_m(-179.9999, 0.0005) == pytest.approx(11.1, abs=0.2)
    circle = Fence.circle(179.9999, 0, 50)
    assert circle.signed_m(-179.9999, 0) == pytest.approx(22.24 - 50, abs=0.1)


def test_fences_near_the_poles_are_refused():
    with pytest.raises(FenceUnsupported):
        validate_geojson(_polygon([[0, 85.5], [0, 85.6], [1, 85.6], [1, 85.5], [0, 85.5]]))
    with pytest.raises(FenceUnsupported):
        validate_circle(0, 84.9999, 1000)
    assert validate_circle(0, 84.9, 1000) == (0.0, 84.9, 1000.0)


def test_too_large_fences_are_refused():
    with pytest.raises(FenceUnsupported):
        validate_geojson(_polygon([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]))


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((None, 0, 10), "needs a centre"),
        ((0, 0, 0.5), "radius_m"),
        ((0, 0, 60_000), "radius_m"),
        ((200, 0, 10), "out of range"),
        ((0, 0, float("nan")), "finite"),
    ],
)
def test_invalid_circles(args, reason):
    with pytest.raises(InvalidFence) as caught:
        validate_circle(*args)
    assert reason in caught.value.message
