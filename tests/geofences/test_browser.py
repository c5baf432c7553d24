"""The admin's fence map in Debian's Chromium against a real daphne: the creator opens
their venue and sees the map with the fence drawn (Leaflet and Leaflet.draw from our own
static files), and the page asks nothing of any host but 127.0.0.1 (no tiles without
GEOFENCES_TILE_URL: the fence on a blank base, offline at a venue)."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest

from tests.browser import ARTIFACTS, DESKTOP, STEP_TIMEOUT_MS, demo_server, watch_errors

pytestmark = pytest.mark.browser

VENUE_SETUP = r"""
import json
from apps.accounts.models import User
from apps.geofences.models import Venue
from apps.geofences.services import venue_create
from creatorcommerce.demo import DEMO_PASSWORD, DEMO_USERS

creator = User.objects.get(email=DEMO_USERS["creator"][0])
ring = [[13.404, 52.519], [13.406, 52.519], [13.406, 52.521], [13.404, 52.521], [13.404, 52.519]]
venue = Venue.objects.filter(location__shop=creator.shop, location__name="Browser venue").first() or venue_create(
    shop=creator.shop, name="Browser venue", fence_kind="polygon",
    fence={"type": "Polygon", "coordinates": [ring]}, time_zone="Europe/Berlin")
circle = Venue.objects.filter(location__shop=creator.shop, location__name="Browser stall").first() or venue_create(
    shop=creator.shop, name="Browser stall", fence_kind="circle", center_lon=13.4036, center_lat=52.5437, radius_m=80)
print("SETUP=" + json.dumps({"venue": venue.pk, "circle": circle.pk, "creator": creator.email,
                             "password": DEMO_PASSWORD}))
"""


@pytest.fixture(scope="module")
def venue_server():
    with demo_server(VENUE_SETUP) as srv:
        yield srv


def test_the_fence_map_shows_the_fence_with_local_files_only(venue_server, browser):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    hosts: set[str] = set()
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        watch_errors(page, errors)
        page.on("request", lambda request: hosts.add(urlparse(request.url).hostname or ""))
        page.goto(venue_server["base"] + "/admin/login/")
        page.fill("input[name=username]", venue_server["creator"])
        page.fill("input[name=password]", venue_server["password"])
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"/admin/$"))
        page.goto(f"{venue_server['base']}/admin/geofences/venue/{venue_server['venue']}/change/")
        map_box = page.locator("[data-fence-map]")
        expect(map_box).to_have_attribute("data-ready", "1")
        expect(map_box).to_have_attribute("data-layers", "1")
        expect(map_box.locator("path.leaflet-interactive")).to_have_count(1)  # the fence's outline
        expect(map_box.locator(".leaflet-draw")).to_be_visible()  # Leaflet.draw's toolbar
        expect(page.locator("textarea[name=fence]")).to_contain_text('"Polygon"')
        page.screenshot(path=str(ARTIFACTS / "admin-fence-map.png"), full_page=True, animations="disabled")

        # A saved circle venue: the circle is drawn when the page opens (it used to throw
        # "reading 'layerPointToLatLng'" and leave the map blank: a circle added before the
        # map had a view).
        page.goto(f"{venue_server['base']}/admin/geofences/venue/{venue_server['circle']}/change/")
        expect(map_box).to_have_attribute("data-ready", "1")
        expect(map_box).to_have_attribute("data-layers", "1")
        expect(map_box.locator("path.leaflet-interactive")).to_have_count(1)
        page.screenshot(path=str(ARTIFACTS / "admin-fence-map-circle.png"), full_page=True, animations="disabled")
        assert hosts <= {"127.0.0.1"}, hosts
        assert errors == []
    finally:
        context.close()
