"""A viewer at the demo's pop-up venue, in a real browser (docs/geofences.md, "On the
storefront"): on the demo stream's page, "Simulate my position" puts them inside the fence;
that grants location consent and pings, the entry issues the running-time coupon, the
pinned products show the venue's own stock, a one-tap buy redeems the coupon and picks up
at the venue, the anchor tee running low brings up the bundle card, and one more tap buys
the bundle. Stopping sharing deletes what was stored and says how much."""

from __future__ import annotations

import re

import pytest

from tests.browser import DESKTOP, demo_server, login, pin, shot

pytestmark = pytest.mark.browser

SETUP = r"""
import json
from apps.geofences.models import Venue
from apps.streams.models import Stream
from django.utils import timezone
from apps.accounts.models import User
from apps.accounts.services import user_grant_role
from apps.streams.services import stream_create
stream = Stream.objects.get(title="Friday night drop")
venue = Venue.objects.get(location__name="Pop-up at the Kulturbrauerei")
User.objects.create_user(email="bare@example.test", password="unused-password-123")
bare = user_grant_role(email="bare@example.test", role="creator", shop_name="No Venues Here")
bare_stream = stream_create(shop=bare.shop, title="A shop without venues", starts_at=timezone.now())
print("SETUP=" + json.dumps({"stream": stream.pk, "venue": venue.pk, "bare_stream": bare_stream.pk}))
"""


@pytest.fixture(scope="module")
def popup_server():
    with demo_server(SETUP) as srv:
        yield srv


def test_a_viewer_at_the_pop_up_gets_a_coupon_sees_the_shelf_and_buys_the_bundle_in_one_tap(popup_server, browser):
    from playwright.sync_api import expect

    from apps.accounts.demo import DEMO_PASSWORD, DEMO_USERS

    server = popup_server
    stream_path = f"/streams/{server['stream']}/"
    errors: list[str] = []
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = login(context, server, DEMO_USERS["viewer"][0], stream_path, errors, password=DEMO_PASSWORD)
        expect(page.locator("#stream-page")).to_have_attribute("data-realtime", "socket")
        panel = page.locator("#geo-panel")
        expect(panel).to_contain_text("Nothing about where you are is stored until you say so")
        expect(panel.locator("#geo-share")).to_be_visible()  # no consent yet
        tee = pin(page, "TEE-M")
        expect(tee.locator(".venue-stock")).to_be_hidden()

        # From a desk: "Simulate my position" inside the venue (consent, then a ping).
        page.select_option("#geo-place", label="Inside Pop-up at the Kulturbrauerei")
        page.click("#geo-send")
        expect(page.locator("#geo-status")).to_contain_text("You're at Pop-up at the Kulturbrauerei")
        coupon = page.locator(".geo__coupon")
        expect(coupon).to_have_count(1)
        expect(coupon).to_contain_text("25% off")
        expect(coupon).to_contain_text("whole shop")
        when = coupon.locator(".geo__when")
        expect(when).to_contain_text("expires in 59:")
        expect(when).not_to_have_text(when.inner_text())  # counts down, every second
        expect(panel.locator("#geo-stop")).to_be_visible()
        expect(page.locator(".geo__announcement")).to_contain_text("Live signing at the pop-up")

        # The venue's shelf, next to the pinned products; no bundle while 6 tees are left.
        expect(tee.locator(".venue-stock")).to_have_text("At the venue: 6 left")
        expect(pin(page, "STICKERS").locator(".venue-stock")).to_have_text("At the venue: 40 left")
        expect(pin(page, "TEE-S").locator(".venue-stock")).to_be_hidden()  # not on the venue's shelf
        expect(page.locator(".bundle-card")).to_have_count(0)
        shot(page, "popup-at-the-venue")

        # One tap: picked up here, the coupon (25 % at minute 0) taken off: 29.00 -> 21.75.
        bodies: list = []
        page.on("request", lambda r: bodies.append(r.post_data_json) if r.url.endswith("/api/v1/orders/") else None)
        tee.get_by_role("button", name=re.compile(r"^Buy")).click()
        expect(page.locator("#buy-status")).to_contain_text("$21.75 (you saved $7.25)")
        assert bodies[-1]["fulfilment"] == "pickup" and bodies[-1]["venue"] == server["venue"]
        assert bodies[-1]["coupon"]
        expect(coupon).to_contain_text("Used")
        expect(tee.locator(".venue-stock")).to_have_text("At the venue: 5 left")

        # The tee ran low at the venue: the bundle is offered, live, and is one tap.
        card = page.locator(".bundle-card")
        expect(card).to_contain_text("Running low — get it in a bundle:")
        expect(card).to_contain_text("$30.00")
        shot(page, "popup-bundle-offer")
        card.get_by_role("button", name="Buy bundle").click()
        expect(page.locator("#buy-status")).to_contain_text("bundle, $30.00")
        expect(tee.locator(".venue-stock")).to_have_text("At the venue: 4 left")
        expect(pin(page, "STICKERS").locator(".venue-stock")).to_have_text("At the venue: 39 left")
        assert "coupon" not in bodies[-1]  # a bundle excludes coupons

        # What was bought, as the API keeps it: the coupon on the first order, the bundle's
        # two lines on the second, both picked up at the venue.
        orders = page.request.get(f"{server['base']}/api/v1/orders/").json()
        orders = orders["results"] if isinstance(orders, dict) else orders
        bundle_order, coupon_order = orders[0], orders[1]
        assert coupon_order["total"] == "21.75"
        assert [a["source"] for a in coupon_order["lines"][0]["adjustments"]] == ["coupon"]
        assert sorted(ln["sku"] for ln in bundle_order["lines"]) == ["STICKERS", "TEE-M"]
        assert {a["source"] for ln in bundle_order["lines"] for a in ln["adjustments"]} == {"bundle"}
        assert bundle_order["total"] == "30.00"
        assert {o["fulfilment"] for o in (bundle_order, coupon_order)} == {"pickup"}

        # Stop sharing: what was stored of the viewer's position and presence is deleted,
        # and the page says how much; the venue's counts go.
        page.click("#geo-stop")
        expect(page.locator("#geo-status")).to_contain_text(re.compile(r"[1-9]\d* stored records? of where you were"))
        expect(tee.locator(".venue-stock")).to_be_hidden()
        expect(panel.locator("#geo-share")).to_be_visible()

        # The order's page says where it is picked up (not "Shipping to" with no address)
        # and shows the coupon taken off; "My orders" says pickup too.
        page.goto(f"{server['base']}/orders/{coupon_order['id']}/")
        expect(page.locator("#ship-h")).to_have_text("Pickup at")
        expect(page.locator(".order-pickup")).to_contain_text("Pop-up at the Kulturbrauerei")
        expect(page.locator(".order-adjustment")).to_contain_text("Pop-up welcome")
        expect(page.locator("main")).not_to_contain_text("placed before orders kept a copy of the address")
        shot(page, "popup-order-pickup")
        page.goto(f"{server['base']}/orders/")
        expect(page.locator(".order-card").first).to_contain_text("pickup at Pop-up at the Kulturbrauerei")
        assert errors == []
    finally:
        context.close()


def test_a_browser_that_refuses_the_position_is_told_so(popup_server, browser):
    """Without demo mode, "Share my location" asks the browser for the position; when the
    browser refuses (no permission), the panel says so instead of "sharing is on" forever."""
    from playwright.sync_api import expect

    from apps.accounts.demo import DEMO_PASSWORD, DEMO_USERS

    server = popup_server
    stream_path = f"/streams/{server['stream']}/"
    errors: list[str] = []
    context = browser.new_context(viewport=DESKTOP)  # no geolocation permission granted
    try:
        page = login(context, server, DEMO_USERS["viewer"][0], "/orders/", errors, password=DEMO_PASSWORD)

        def real_positions(route):  # the page as without GEO_SIMULATE_POSITION
            response = route.fetch()
            route.fulfill(response=response, body=response.text().replace('data-simulate="1"', 'data-simulate="0"'))

        page.route(f"**{stream_path}", real_positions)
        page.goto(server["base"] + stream_path)
        if page.locator("#geo-stop").is_visible():
            page.click("#geo-stop")
        page.click("#geo-share")
        expect(page.locator("#geo-status")).to_contain_text("Your browser isn't sharing your position")
        expect(page.locator("#geo-simulate")).to_be_hidden()
        assert errors == []
    finally:
        context.close()


def test_signed_out_the_panel_invites_to_log_in_where_the_shop_has_a_venue(popup_server, browser):
    from playwright.sync_api import expect

    from tests.browser import new_page

    errors: list[str] = []
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = new_page(context, errors)
        page.goto(f"{popup_server['base']}/streams/{popup_server['stream']}/")
        panel = page.locator("#geo-panel")
        expect(panel).to_be_visible()
        expect(panel.get_by_role("link", name="Log in")).to_be_visible()
        # A shop without venues: its stream page shows no panel (nothing to invite to).
        page.goto(f"{popup_server['base']}/streams/{popup_server['bare_stream']}/")
        expect(page.locator("#stream-page")).to_have_attribute("data-realtime", "socket")
        expect(page.locator("#geo-panel")).to_be_hidden()
        assert errors == []
    finally:
        context.close()
