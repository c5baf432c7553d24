"""The badge pop in a real browser (Debian's Chromium through Playwright) against a real
daphne: a viewer buys in the live demo drop, and every viewer of the stream sees the badge
pop in the player, over the video only (never over a buy button), and without animation
for those who asked for reduced motion."""

from __future__ import annotations

import re

import pytest

from tests.browser import ARTIFACTS, DESKTOP, MOBILE, STREAM_SETUP, demo_server, login, pin, shot

pytestmark = pytest.mark.browser

BADGE_SETUP = (
    STREAM_SETUP
    + r"""
from apps.loyalty.badges import badge_save
from apps.loyalty.models import Badge

if not Badge.objects.filter(shop=shop, name="Browser pop").exists():
    badge_save(shop=shop, name="Browser pop", icon="🚀", rule="first_buyers", count=1000, stream=stream)
"""
)


@pytest.fixture(scope="module")
def badge_server():
    with demo_server(BADGE_SETUP) as srv:
        yield srv


def _overlaps(a, b) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_a_badge_pops_for_the_streams_viewers(badge_server, browser):
    from playwright.sync_api import expect

    server = badge_server
    ARTIFACTS.mkdir(exist_ok=True)
    stream_path = f"/streams/{server['stream']}/"
    errors: list[str] = []
    buyer_ctx = browser.new_context(viewport=DESKTOP)
    watcher_ctx = browser.new_context(viewport=MOBILE, is_mobile=True, has_touch=True, reduced_motion="reduce")
    try:
        buyer = login(buyer_ctx, server, server["buyer"], stream_path, errors)
        watcher = login(watcher_ctx, server, server["second"], stream_path, errors)
        for page in (buyer, watcher):
            expect(page.locator("#stream-page")).to_have_attribute("data-realtime", "socket")

        pin(buyer, server["sku"]).get_by_role("button", name=re.compile(r"^Buy")).click()
        expect(buyer.locator("#buy-status")).to_contain_text("confirmed")
        for page in (buyer, watcher):
            pop = page.locator("#badge-pops .badge-pop").filter(has_text="Browser pop")
            expect(pop).to_have_count(1)
            expect(pop).to_contain_text(f"{server['buyer_name']} earned Browser pop")
            # Over the video only: no buy button lies under it, and it takes no clicks.
            box = pop.bounding_box()
            for button in page.locator("li.pin button").all():
                button_box = button.bounding_box()
                if button_box:
                    assert not _overlaps(box, button_box)
            assert page.locator("#badge-pops").evaluate("el => getComputedStyle(el).pointerEvents") == "none"
        # The animated pop for the buyer; none for the viewer who asked for reduced motion.
        assert "enter" in buyer.locator("#badge-pops .badge-pop").first.get_attribute("class")
        assert "enter" not in watcher.locator("#badge-pops .badge-pop").first.get_attribute("class")
        shot(buyer, "badge-pop")
        shot(watcher, "badge-pop-mobile")
        # The buyer can buy again at once: nothing blocks the button.
        pin(buyer, server["sku"]).get_by_role("button", name=re.compile(r"^Buy|Bought")).wait_for()
        assert not errors, errors
    finally:
        buyer_ctx.close()
        watcher_ctx.close()
