"""The venues' admin: a creator sees and edits only their shop's venues, creates one from
a new venue location, gets field errors for invalid fences, and every write goes through
the services (events, version)."""

from __future__ import annotations

import json

import pytest

from apps.catalog.models import Location
from apps.geofences.models import Venue, VenueHours
from apps.geofences.services import venue_create
from tests.factories import CreatorFactory, StaffFactory
from tests.helpers import captured_events, page_form

from .conftest import square

pytestmark = pytest.mark.django_db
ADD = "/admin/geofences/venue/add/"


def _add_form(client, **overrides):
    data = page_form(client, ADD)
    data.update(
        {
            "new_location_name": "Pop-up Hall",
            "new_location_address": "1 Market St",
            "fence_kind": "polygon",
            "fence": json.dumps({"type": "Polygon", "coordinates": [square(60)]}),
            "time_zone": "Europe/Berlin",
            "dwell_seconds": "300",
            "announce_radius_m": "0",
            "hours-TOTAL_FORMS": "1",
            "hours-0-weekday": "4",
            "hours-0-opens": "18:00",
            "hours-0-closes": "02:00",
        }
    )
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_creator_sees_only_their_venues(client, venue, creator):
    other = CreatorFactory()
    theirs = venue_create(
        shop=other.shop, name="Elsewhere", fence_kind="circle", center_lon=2.35, center_lat=48.85, radius_m=40
    )
    client.force_login(creator)
    page = client.get("/admin/geofences/venue/").content.decode()
    assert "Pop-up Mitte" in page and "Elsewhere" not in page
    assert client.get(f"/admin/geofences/venue/{theirs.pk}/change/").status_code in (302, 403, 404)
    client.force_login(StaffFactory())
    page = client.get("/admin/geofences/venue/").content.decode()
    assert "Pop-up Mitte" in page and "Elsewhere" in page


def test_change_page_has_the_map_and_local_leaflet(client, venue, creator):
    client.force_login(creator)
    page = client.get(f"/admin/geofences/venue/{venue.pk}/change/").content.decode()
    assert "data-fence-map" in page
    for path in ("leaflet/leaflet.js", "leaflet/leaflet.css", "leaflet/draw/leaflet.draw.js", "js/fence-map.js"):
        assert f"/static/{path}" in page
    assert "http://" not in page.split("<body")[0].replace("http://www.w3.org", "")


def test_creator_creates_a_venue_with_a_new_location_and_hours(client, creator):
    client.force_login(creator)
    with captured_events() as events:
        response = client.post(ADD, _add_form(client))
    assert response.status_code == 302, response.content.decode()[:3000]
    venue = Venue.objects.get()
    assert venue.location.kind == "venue" and venue.location.shop == creator.shop
    assert venue.location.name == "Pop-up Hall" and venue.location.address == "1 Market St"
    assert [(h.weekday, str(h.opens), str(h.closes)) for h in VenueHours.objects.all()] == [(4, "18:00:00", "02:00:00")]
    assert [e[0] for e in events] == ["venue.updated", "venue.updated"]  # created, then its hours
    assert Venue.objects.get().version == 2


@pytest.mark.parametrize(
    ("fence", "message"),
    [
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [0.001, 0.001], [0.001, 0], [0, 0.001], [0, 0]]]},
            "crosses itself",
        ),
        ({"type": "Polygon", "coordinates": [[[0, 0], [0, 0.001], [0.001, 0.001], [0.001, 0]]]}, "not closed"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [0, 95], [1, 1], [0, 0]]]}, "out of range"),
        ({"type": "Polygon", "coordinates": [[[179.9, 0], [-179.9, 0], [-179.9, 0.1], [179.9, 0]]]}, "antimeridian"),
    ],
)
def test_an_invalid_fence_is_a_field_error(client, creator, fence, message):
    client.force_login(creator)
    response = client.post(ADD, _add_form(client, fence=json.dumps(fence)))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "fence" in errors and message in errors["fence"][0]
    assert not Venue.objects.exists() and not Location.objects.filter(kind="venue").exists()


def test_not_json_is_a_field_error(client, creator):
    client.force_login(creator)
    response = client.post(ADD, _add_form(client, fence="{oops"))
    assert "fence" in response.context["adminform"].form.errors
    assert not Venue.objects.exists()


def test_a_circle_needs_centre_and_radius(client, creator):
    client.force_login(creator)
    response = client.post(ADD, _add_form(client, fence_kind="circle", fence="", center_lon="13.4", center_lat="52.5"))
    errors = response.context["adminform"].form.errors
    assert errors and not Venue.objects.exists()
    response = client.post(
        ADD, _add_form(client, fence_kind="circle", fence="", center_lon="13.4", center_lat="52.5", radius_m="40")
    )
    assert response.status_code == 302
    venue = Venue.objects.get()
    assert (venue.fence, venue.radius_m) == (None, 40.0)


def test_editing_goes_through_the_service(client, creator, venue):
    client.force_login(creator)
    url = f"/admin/geofences/venue/{venue.pk}/change/"
    data = page_form(client, url)
    data["announcement"] = "Opening night"
    with captured_events() as events:
        response = client.post(url, data)
    assert response.status_code == 302
    venue.refresh_from_db()
    assert venue.announcement == "Opening night" and venue.version == 2
    assert [e[0] for e in events] == ["venue.updated"]


def test_creator_cannot_use_another_shops_location(client, creator):
    other = CreatorFactory()
    theirs = Location.objects.create(shop=other.shop, name="Their venue", kind="venue")
    client.force_login(creator)
    response = client.post(ADD, _add_form(client, new_location_name="", location=str(theirs.pk)))
    assert response.status_code == 200 and "location" in response.context["adminform"].form.errors
    assert not Venue.objects.exists()


def test_hours_that_open_and_close_at_the_same_time_are_a_field_error_in_words(client, creator):
    client.force_login(creator)
    response = client.post(ADD, _add_form(client, **{"hours-0-opens": "18:00", "hours-0-closes": "18:00"}))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Closing must differ from opening" in page
    assert "geofences_hours_not_empty" not in page
    assert not Venue.objects.exists()


def test_a_new_venue_starts_in_the_creators_time_zone(client, creator):
    creator.time_zone = "America/New_York"
    creator.save(update_fields=["time_zone"])
    client.force_login(creator)
    form = client.get(ADD).context["adminform"].form
    assert form["time_zone"].value() == "America/New_York"


def test_staff_see_whose_venue_each_is(client, venue, creator):
    other = CreatorFactory()
    venue_create(shop=other.shop, name="Elsewhere", fence_kind="circle", center_lon=2.35, center_lat=48.85, radius_m=40)
    client.force_login(StaffFactory())
    page = client.get("/admin/geofences/venue/").content.decode()
    assert "column-shop_name" in page
    assert creator.shop.name in page and other.shop.name in page
    client.force_login(creator)
    assert "column-shop_name" not in client.get("/admin/geofences/venue/").content.decode()


def test_the_history_names_the_creator_without_none_none(client, creator):
    creator.display_name = "Demo Creator"
    creator.save(update_fields=["display_name"])
    client.force_login(creator)
    client.post(ADD, _add_form(client))
    history = client.get(f"/admin/geofences/venue/{Venue.objects.get().pk}/history/").content.decode()
    assert f"{creator.email} (Demo Creator)" in history
    assert "None None" not in history
