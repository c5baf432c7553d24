"""``POST /api/v1/geo/pings/`` and ``GET /api/v1/venues/``: answers, and bad input (4xx
with a code, nothing written)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.utils import timezone

from apps.geofences.models import Position, Presence
from apps.geofences.services import venue_create
from creatorcommerce.spine.models import OutboxEvent

from .conftest import LAT0, LON0, fresh, offset

pytestmark = pytest.mark.django_db
URL = "/api/v1/geo/pings/"


@pytest.fixture(autouse=True)
def _no_throttle_history():
    cache.clear()


def _post(client, body):
    return client.post(URL, body, format="json")


def test_ping_inside_through_the_api(api_client, viewer, venue):
    api_client.force_login(viewer)
    response = _post(api_client, {"lat": LAT0, "lon": LON0, "accuracy_m": 10})
    assert response.status_code == 200
    body = response.json()
    assert body["venues"][0]["id"] == venue.pk and body["venues"][0]["state"] == "inside"
    assert body["coupons"] == [] and body["announcements"] == []
    assert Presence.objects.filter(user=viewer).count() == 1


def test_no_consent_is_403_and_nothing_stored(api_client, stranger, venue):
    api_client.force_login(stranger)
    events = OutboxEvent.objects.count()
    response = _post(api_client, {"lat": LAT0, "lon": LON0, "accuracy_m": 10})
    assert response.status_code == 403 and response.json()["code"] == "consent_required"
    assert Position.objects.count() == 0 and Presence.objects.count() == 0
    assert OutboxEvent.objects.count() == events


def test_anonymous_is_refused(api_client, venue):
    response = _post(api_client, {"lat": LAT0, "lon": LON0, "accuracy_m": 10})
    assert response.status_code in (401, 403)
    assert response.json()["code"] in ("not_authenticated", "permission_denied")


def test_stale_and_inaccurate_answer_200_ignored(api_client, viewer, venue):
    api_client.force_login(viewer)
    old = (timezone.now() - timedelta(minutes=10)).isoformat()
    assert _post(api_client, {"lat": LAT0, "lon": LON0, "accuracy_m": 10, "at": old}).json()["ignored"] == "stale"
    assert _post(api_client, {"lat": LAT0, "lon": LON0, "accuracy_m": 500}).json()["ignored"] == "inaccurate"
    assert Position.objects.count() == 0 and Presence.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"lat": 91, "lon": 0, "accuracy_m": 5}, "invalid"),
        ({"lat": 0, "lon": -180.5, "accuracy_m": 5}, "invalid"),
        ({"lat": "52.5", "lon": 13.4, "accuracy_m": 5}, "invalid"),
        ({"lat": True, "lon": 13.4, "accuracy_m": 5}, "invalid"),
        ({"lat": 52.5, "lon": 13.4}, "invalid"),
        ({"lat": 52.5, "lon": 13.4, "accuracy_m": -1}, "invalid"),
        ({"lat": 52.5, "lon": 13.4, "accuracy_m": 5, "at": "yesterday"}, "invalid"),
        ({"lat": 52.5, "lon": 13.4, "accuracy_m": 5, "at": 1700000000}, "invalid"),
        # no offset: it would be read in whatever zone the viewer's profile activates
        ({"lat": 52.5, "lon": 13.4, "accuracy_m": 5, "at": "2026-06-01T12:00:00"}, "invalid"),
        # integers too large for a float (JSON has no limit on digits)
        ({"lat": 10**400, "lon": 13.4, "accuracy_m": 5}, "invalid"),
        ({"lat": 52.5, "lon": 13.4, "accuracy_m": 10**400}, "invalid"),
        ([], "invalid"),
    ],
)
def test_bad_pings_are_400_and_write_nothing(api_client, viewer, venue, body, code):
    api_client.force_login(viewer)
    response = _post(api_client, body)
    assert response.status_code == 400 and response.json()["code"] == code
    assert Position.objects.count() == 0


def test_at_with_an_offset_is_read_as_that_moment(api_client, viewer, venue):
    """``at`` must carry its offset (``Z`` or ``+02:00``); the same moment written in two
    zones is the same ping."""
    api_client.force_login(viewer)
    now = timezone.now()
    for at in (now.isoformat(), now.astimezone(ZoneInfo("America/New_York")).isoformat()):
        response = _post(api_client, {"lat": LAT0, "lon": LON0, "accuracy_m": 5, "at": at})
        assert response.status_code == 200 and "ignored" not in response.json()


def test_a_ping_from_the_future_is_400(api_client, viewer, venue):
    api_client.force_login(viewer)
    later = (timezone.now() + timedelta(minutes=5)).isoformat()
    response = _post(api_client, {"lat": LAT0, "lon": LON0, "accuracy_m": 5, "at": later})
    assert response.status_code == 400 and response.json()["code"] == "ping_in_future"
    assert Position.objects.count() == 0


def test_malformed_json_is_400(api_client, viewer):
    api_client.force_login(viewer)
    response = api_client.generic("POST", URL, "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "malformed_request"


def test_pings_are_rate_limited_per_viewer(api_client, viewer, other_viewer, venue, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "geo_ping": "3/min"},
    }
    api_client.force_login(viewer)
    answers = [_post(api_client, {"lat": LAT0, "lon": LON0, "accuracy_m": 5}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["code"] == "rate_limited" and int(answers[-1]["Retry-After"]) >= 1
    api_client.force_login(other_viewer)
    assert _post(api_client, {"lat": LAT0, "lon": LON0, "accuracy_m": 5}).status_code == 200


def test_venues_list_public(api_client, venue, creator):
    lat, lon = offset(east=3000)
    circle = venue_create(
        shop=creator.shop, name="Kiosk", fence_kind="circle", center_lon=lon, center_lat=lat, radius_m=50
    )
    fresh()
    body = api_client.get("/api/v1/venues/").json()
    assert [v["id"] for v in body] == [venue.pk, circle.pk]
    assert body[0]["fence"]["type"] == "Feature" and body[0]["fence"]["geometry"]["type"] == "Polygon"
    assert body[1]["fence"] == {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"radius_m": 50.0},
    }
    assert body[0]["open_now"] is True and body[0]["announcement"] is None and body[0]["shop"] == creator.shop.slug
    assert "distance_m" not in body[0]
    near = api_client.get("/api/v1/venues/", {"near": f"{LAT0},{LON0}", "radius_m": 5000}).json()
    assert [(v["id"], v["distance_m"]) for v in near] == [(venue.pk, 0), (circle.pk, pytest.approx(2950, abs=2))]
    near = api_client.get("/api/v1/venues/", {"near": f"{LAT0},{LON0}", "radius_m": 1000}).json()
    assert [v["id"] for v in near] == [venue.pk]


@pytest.mark.parametrize(
    "params",
    [
        {"near": "52.5"},
        {"near": "x,y"},
        {"near": "91,0"},
        {"near": "nan,0"},
        {"near": "52.5,13.4", "radius_m": "-1"},
        {"near": "52.5,13.4", "radius_m": "far"},
        {"near": "52.5,13.4", "radius_m": "1e9"},
        {"radius_m": "100"},
    ],
)
def test_venues_bad_query_is_400(api_client, venue, params):
    response = api_client.get("/api/v1/venues/", params)
    assert response.status_code == 400 and response.json()["code"] == "invalid_query"
