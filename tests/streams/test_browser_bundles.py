"""On-site stock and smart bundles in a real browser (docs/geofences.md): a viewer
the geo panel places inside a venue sees "At the venue: N left" next to the pinned SKUs,
live after buys; when the anchor runs low there the bundle card appears, and one tap buys
the bundle (picked up at the venue), all lines at once."""

from __future__ import annotations

import re

import pytest

from tests.browser import DESKTOP, STREAM_SETUP, demo_server, login, pin, shot

pytestmark = pytest.mark.browser

VENUE_SETUP = (
    "import contextlib, io, json\n"
    f"STREAM_SETUP = {STREAM_SETUP!r}\n"
    r"""
out = io.StringIO()
with contextlib.redirect_stdout(out):
    exec(STREAM_SETUP)
data = json.loads(next(l for l in out.getvalue().splitlines() if l.startswith("SETUP="))[len("SETUP="):])

from decimal import Decimal

from apps.catalog.models import SKU, BundleRule, Location
from apps.catalog.services import bundle_rule_save, stock_adjust
from apps.streams.models import Stream

stream = Stream.objects.get(pk=data["stream"])
anchor = SKU.objects.get(shop=stream.shop, code=data["sku"])
extra = SKU.objects.get(shop=stream.shop, code=data["extra"])
venue = Location.objects.create(shop=stream.shop, name="Test pop-up", kind=Location.Kind.VENUE)
stock_adjust(sku=anchor, location=venue, set_to=3)
stock_adjust(sku=extra, location=venue, set_to=5)
rule = bundle_rule_save(
    rule=BundleRule(shop=stream.shop, label="Low bundle", anchor=anchor, trigger="low_stock", threshold=1,
                    venue=venue, percent=Decimal("20")),
    items=[extra],
)
data.update(venue=venue.pk, bundle=rule.pk)
print("SETUP=" + json.dumps(data))
"""
)


@pytest.fixture(scope="module")
def venue_server():
    with demo_server(VENUE_SETUP) as srv:
        yield srv


def test_at_the_venue_stock_goes_live_and_the_low_stock_bundle_is_one_tap(venue_server, browser):
    from playwright.sync_api import expect

    server = venue_server
    sku, stream_path = server["sku"], f"/streams/{server['stream']}/"
    errors: list[str] = []
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = login(context, server, server["second"], stream_path, errors)
        expect(page.locator("#stream-page")).to_have_attribute("data-realtime", "socket")
        on_site = pin(page, sku).locator(".venue-stock")
        expect(on_site).to_be_hidden()  # not at the venue yet
        page.evaluate(
            "([venue]) => document.dispatchEvent(new CustomEvent('cc:venue', "
            "{detail: {venue, state: 'inside', name: 'Test pop-up'}}))",
            [server["venue"]],
        )
        expect(page.locator("#venue-here")).to_contain_text("Test pop-up")
        expect(on_site).to_have_text("At the venue: 3 left")
        expect(pin(page, server["extra"]).locator(".venue-stock")).to_have_text("At the venue: 5 left")
        expect(page.locator(".bundle-card")).to_have_count(0)  # 3 on site: not low yet

        # Buying inside the venue picks up there: the venue's count drops, live.
        pin(page, sku).get_by_role("button", name=re.compile(r"^Buy")).click()
        expect(on_site).to_have_text("At the venue: 2 left")
        expect(pin(page, sku).locator("button.buy")).not_to_contain_text("Bought", timeout=10_000)
        pin(page, sku).get_by_role("button", name=re.compile(r"^Buy")).click()
        expect(on_site).to_have_text("At the venue: 1 left")

        # At the threshold the bundle card appears: one tap buys both lines, picked up here.
        card = page.locator(f'.bundle-card[data-bundle="{server["bundle"]}"]')
        expect(card).to_contain_text("Running low — get it in a bundle:")
        expect(card).to_contain_text("save")
        shot(page, "venue-bundle-card")
        bodies = []
        page.on("request", lambda r: bodies.append(r.post_data_json) if r.url.endswith("/api/v1/orders/") else None)
        card.get_by_role("button", name="Buy bundle").click()
        expect(page.locator("#buy-status")).to_contain_text("bundle")
        expect(page.locator("#buy-status")).to_contain_text("confirmed")
        expect(on_site).to_have_text("At the venue: 0 left")
        expect(pin(page, server["extra"]).locator(".venue-stock")).to_have_text("At the venue: 4 left")
        assert bodies[-1] == {
            "bundle": server["bundle"],
            "stream": server["stream"],
            "fulfilment": "pickup",
            "venue": server["venue"],
        }

        # Leaving the venue hides the on-site counts.
        page.evaluate(
            "([venue]) => document.dispatchEvent(new CustomEvent('cc:venue', {detail: {venue, state: 'outside'}}))",
            [server["venue"]],
        )
        expect(on_site).to_be_hidden()
        assert errors == []
    finally:
        context.close()
