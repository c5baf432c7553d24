"""The storefront when the server is too busy (static/js/stream.js; docs/overload.md), in
Debian's Chromium against daphne: a tap refused with 503 overloaded is tried again with the
same Idempotency-Key, after Retry-After and a jittered wait, telling the buyer "Busy —
retrying…", and ends bought exactly once; refused every time, it gives up after a bounded
number of tries with a clear message and no order.

The refusals are made deterministic by answering the page's first POSTs with the server's own
refusal (creatorcommerce.admission.refusal) instead of passing them on; the tap that gets
through reaches the real server. The second scenario runs the page on Playwright's clock, so
the waits between tries are skipped rather than slept."""

from __future__ import annotations

import re

import pytest

from tests.browser import login, pin

pytestmark = pytest.mark.browser

ORDERS = "**/api/v1/orders/"


def orders_count(page) -> int:
    return page.evaluate(
        "fetch('/api/v1/orders/', {credentials: 'same-origin'}).then(r => r.json()).then(d => d.length)"
    )


class Refuser:
    """Answers the first ``refuse`` buys (POSTs) itself with the server's 503 overloaded;
    passes the rest on. Records each buy's Idempotency-Key and Cache-Control."""

    def __init__(self, refuse: int):
        self.refuse = refuse
        self.keys: list[str] = []
        self.cache_control: list[str | None] = []

    def __call__(self, route, request):
        if request.method != "POST":
            route.continue_()
            return
        self.keys.append(request.headers.get("idempotency-key"))
        self.cache_control.append(request.headers.get("cache-control"))
        if len(self.keys) > self.refuse:
            route.continue_()
            return
        from creatorcommerce.admission import refusal

        answer = refusal("/api/v1/orders/")
        route.fulfill(
            status=answer.status,
            headers={name.decode(): value.decode() for name, value in answer.headers},
            body=answer.body,
        )


def test_a_refused_tap_is_retried_with_the_same_key_and_bought_once(server, browser, settings):
    from playwright.sync_api import expect

    settings.ADMISSION_RETRY_AFTER_SECONDS = 1  # the refusals this test makes say "1"
    errors: list[str] = []
    context = browser.new_context()
    try:
        page = login(context, server, server["buyer"], f"/streams/{server['stream']}/", errors)
        expect(page.locator("#stream-page")).to_have_attribute("data-realtime", "socket")
        before = orders_count(page)
        refuser = Refuser(refuse=2)
        page.route(ORDERS, refuser)
        card = pin(page, server["sku"])
        card.get_by_role("button", name=re.compile(r"^Buy")).click()
        expect(page.locator("#buy-status")).to_contain_text("Busy — retrying…")
        expect(card.locator("button.buy")).to_contain_text("Retrying…")
        expect(card.locator("button.buy")).to_contain_text("Bought")
        expect(page.locator("#buy-status")).to_contain_text(re.compile(r"Order #\d+ confirmed"))
        assert len(refuser.keys) == 3 and len(set(refuser.keys)) == 1, refuser.keys  # one key for all
        assert refuser.cache_control == [None, None, None]  # a first tap: memory may answer it
        assert orders_count(page) == before + 1
        assert errors == []
    finally:
        context.close()


def test_refused_every_time_it_gives_up_with_a_clear_message_and_no_order(server, browser, settings):
    from playwright.sync_api import expect

    settings.ADMISSION_RETRY_AFTER_SECONDS = 1
    errors: list[str] = []
    context = browser.new_context()
    context.clock.install()  # time flows, and the test may jump it forward
    try:
        page = login(context, server, server["buyer"], f"/streams/{server['stream']}/", errors)
        expect(page.locator("#stream-page")).to_have_attribute("data-realtime", "socket")
        before = orders_count(page)
        refuser = Refuser(refuse=1000)
        page.route(ORDERS, refuser)
        card = pin(page, server["sku"])
        expect(card.locator("button.buy")).to_contain_text(re.compile(r"^Buy"))
        card.get_by_role("button", name=re.compile(r"^Buy")).click()
        expect(page.locator("#buy-status")).to_contain_text("Busy — retrying…")
        status = page.locator("#buy-status")
        for _ in range(40):  # each jump fires the pending wait; 6 tries in all
            if "Still too busy" in (status.text_content() or ""):
                break
            page.clock.run_for(10_000)
        expect(status).to_contain_text("Still too busy — your order wasn't placed and nothing was charged.")
        assert len(refuser.keys) == 6 and len(set(refuser.keys)) == 1
        expect(card.locator("button.buy")).to_contain_text(re.compile(r"^Buy"))
        assert orders_count(page) == before
        assert errors == []
    finally:
        context.close()
