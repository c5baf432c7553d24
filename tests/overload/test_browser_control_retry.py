"""The creator's control room when the server is too busy (static/js/control.js,
static/js/devices-panel.js, static/js/retry.js; docs/overload.md, "The control room
retries"), in Debian's Chromium against daphne: a control refused with 503 overloaded is sent
again after Retry-After and a jittered wait, its button saying "Retrying…" and the room
"Busy — retrying…", and takes effect exactly once; refused every time, it gives up after six
tries with a clear error and nothing changed.

The refusals are made as in tests/overload/test_browser_retry.py: the page's first writes
to a control's path are answered with the server's own refusal
(creatorcommerce.admission.refusal) instead of being passed on; the try that gets through
reaches the real server. The giving-up test runs the page on Playwright's clock, so the waits
between tries are skipped rather than slept. The server runs in embedded mode (no MQTT: the
in-process simulated device acks each cue), so a cue fired by hand is seen end to end."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.browser import login

pytestmark = pytest.mark.browser

PINS = re.compile(r"/api/v1/streams/\d+/pins/")
DEALS = re.compile(r"/api/v1/streams/\d+/deals/")
CUES = re.compile(r"/api/v1/devices/\d+/cues/")
STICKERS = "STICKERS"  # pinned on the demo stream, no deal on it


@pytest.fixture(scope="module")
def server():
    """tests/browser.py's demo server (a live stream whose creator has the demo devices), in
    embedded mode whatever MQTT_URL the test run has."""
    from tests.browser import STREAM_SETUP, demo_server

    with demo_server(STREAM_SETUP, extra_env={"MQTT_URL": "", "DEVICES_SIMULATE_IN_PROCESS": "1"}) as srv:
        yield srv


class Refuser:
    """Answers the first ``refuse`` writes (not GET) itself with the server's 503 overloaded
    for their path; passes the rest on. Records each write's method and path."""

    def __init__(self, refuse: int):
        self.refuse = refuse
        self.writes: list[tuple[str, str]] = []

    def __call__(self, route, request):
        if request.method == "GET":
            route.continue_()
            return
        path = urlsplit(request.url).path
        self.writes.append((request.method, path))
        if len(self.writes) > self.refuse:
            route.continue_()
            return
        from creatorcommerce.admission import refusal

        answer = refusal(path)
        route.fulfill(
            status=answer.status,
            headers={name.decode(): value.decode() for name, value in answer.headers},
            body=answer.body,
        )


def get_json(page, path: str):
    return page.evaluate(
        "(path) => fetch(path, {credentials: 'same-origin'}).then(r => r.json())",
        path,
    )


def pinned(page, server) -> list[str]:
    return [p["sku"] for p in get_json(page, f"/api/v1/streams/{server['stream']}/")["pins"]]


def open_deals(page, server) -> dict[str, int | None]:
    """Each pin's open deal (its id), or None."""
    pins = get_json(page, f"/api/v1/streams/{server['stream']}/")["pins"]
    return {p["sku"]: (p["deal"] or {}).get("id") for p in pins}


def manual_cues(page, server) -> list[dict]:
    cues = get_json(page, f"/api/v1/devices/cues/?stream={server['stream']}&streamless=1")
    return [c for c in cues if c["event"] == "manual"]


def open_control_room(context, server, errors):
    from playwright.sync_api import expect

    page = login(context, server, server["creator"], f"/streams/{server['stream']}/control/", errors)
    expect(page.locator("#status-pill")).to_have_text("Live")
    expect(page.locator("#kpi-viewers")).to_have_text(re.compile(r"^\d+$"))  # the socket's snapshot came
    return page


def led_strip(page):
    return page.locator("#devices-body tr[data-device]").filter(has_text="LED strip")


def run_until(page, locator, text: str) -> None:
    """Jump the page's clock until ``locator`` says ``text`` (each jump fires the pending wait)."""
    for _ in range(40):
        if text in (locator.text_content() or ""):
            return
        page.clock.run_for(10_000)


def test_a_refused_unpin_and_pin_say_busy_then_take_effect_once(server, browser, settings):
    from playwright.sync_api import expect

    settings.ADMISSION_RETRY_AFTER_SECONDS = 1  # the refusals this test makes say "1"
    errors: list[str] = []
    context = browser.new_context()
    try:
        page = open_control_room(context, server, errors)
        assert pinned(page, server).count(STICKERS) == 1
        status = page.locator("#control-status")
        row = page.locator(f'#pins-body tr[data-sku="{STICKERS}"]')

        # Unpin, refused twice: the row's button and the room say so, then it is unpinned.
        refuser = Refuser(refuse=2)
        page.route(PINS, refuser)
        row.get_by_role("button", name=re.compile("^Unpin")).click()
        expect(status).to_contain_text("Busy — retrying…")
        expect(row.get_by_role("button", name=re.compile("^Retrying…"))).to_be_disabled()
        expect(status).to_contain_text(f"Unpinned {STICKERS}.")
        expect(row).to_have_count(0)
        assert refuser.writes == [("DELETE", f"/api/v1/streams/{server['stream']}/pins/{STICKERS}/")] * 3
        assert STICKERS not in pinned(page, server)
        page.unroute(PINS)

        # Pin it again, refused twice: the Pin button says "Retrying…", then it is pinned once.
        refuser = Refuser(refuse=2)
        page.route(PINS, refuser)
        page.locator("#pin-sku").select_option(STICKERS)
        pin_button = page.locator("#pin-form button")
        pin_button.click()
        expect(status).to_contain_text("Busy — retrying…")
        expect(pin_button).to_have_text("Retrying…")
        expect(pin_button).to_be_disabled()
        expect(status).to_contain_text(f"Pinned {STICKERS}.")
        expect(row).to_be_visible()
        expect(pin_button).to_have_text("Pin")
        assert refuser.writes == [("POST", f"/api/v1/streams/{server['stream']}/pins/")] * 3
        assert pinned(page, server).count(STICKERS) == 1
        assert errors == []
    finally:
        context.close()


def test_a_refused_cue_says_busy_under_the_device_then_fires_once(server, browser, settings):
    from playwright.sync_api import expect

    settings.ADMISSION_RETRY_AFTER_SECONDS = 1
    errors: list[str] = []
    context = browser.new_context()
    try:
        page = open_control_room(context, server, errors)
        led = led_strip(page)
        by_hand = page.locator("#cue-log tr[data-cue]").filter(has_text="by hand").filter(has_text="flash")
        before = len(manual_cues(page, server))
        shown = by_hand.count()

        refuser = Refuser(refuse=2)
        page.route(CUES, refuser)
        led.get_by_role("button", name="Fire flash on LED strip").click()
        expect(led.locator(".device__busy")).to_have_text("Busy — retrying…")
        expect(led.get_by_role("button", name="Fire flash on LED strip")).to_be_disabled()
        expect(by_hand).to_have_count(shown + 1)
        expect(by_hand.first).to_have_attribute("data-status", "acked")
        expect(led.locator(".device__busy")).to_have_count(0)
        expect(led.locator(".device__error")).to_have_count(0)
        assert [method for method, _ in refuser.writes] == ["POST"] * 3
        cues = manual_cues(page, server)
        assert len(cues) == before + 1  # three tries, one cue
        assert cues[0]["kind"] == "flash"
        assert errors == []
    finally:
        context.close()


def test_refused_every_time_the_control_room_gives_up_with_a_clear_error(server, browser, settings):
    from playwright.sync_api import expect

    settings.ADMISSION_RETRY_AFTER_SECONDS = 1
    errors: list[str] = []
    context = browser.new_context()
    context.clock.install()  # time flows, and the test may jump it forward
    try:
        page = open_control_room(context, server, errors)
        status = page.locator("#control-status")

        # "Open now" on a scheduled deal, refused every time: six tries, then an error.
        deal = page.locator("#deals li.deal--scheduled").first
        title = deal.locator("strong").inner_text()
        deals_before = open_deals(page, server)
        refuser = Refuser(refuse=1000)
        page.route(DEALS, refuser)
        deal.get_by_role("button", name=re.compile("^Open now")).click()
        expect(status).to_contain_text("Busy — retrying…")
        expect(deal.get_by_role("button", name=re.compile("^Retrying…"))).to_be_disabled()
        run_until(page, status, "Still too busy")
        expect(status).to_contain_text("Still too busy — nothing was changed. Try again in a moment.")
        assert len(refuser.writes) == 6 and len(set(refuser.writes)) == 1, refuser.writes
        scheduled = page.locator("#deals li.deal--scheduled").filter(has_text=title)
        expect(scheduled.get_by_role("button", name=re.compile("^Open now"))).to_be_enabled()
        assert open_deals(page, server) == deals_before  # no deal opened

        # A cue fired by hand, refused every time: the error shows under the device's buttons.
        led = led_strip(page)
        before = len(manual_cues(page, server))
        refuser = Refuser(refuse=1000)
        page.route(CUES, refuser)
        led.get_by_role("button", name="Fire pulse on LED strip").click()
        expect(led.locator(".device__busy")).to_have_text("Busy — retrying…")
        run_until(page, led, "Still too busy")
        expect(led.locator(".device__error")).to_have_text(
            "Still too busy — no cue was sent. Try again in a moment. (overloaded)"
        )
        expect(led.locator(".device__busy")).to_have_count(0)
        expect(led.get_by_role("button", name="Fire pulse on LED strip")).to_be_enabled()
        assert len(refuser.writes) == 6
        assert len(manual_cues(page, server)) == before
        assert errors == []
    finally:
        context.close()
