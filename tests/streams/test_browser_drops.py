"""A drop cancelled through the creators' API while viewers have its page open (docs/streams.md,
"Creators' API for drops"), in Debian's Chromium against a real daphne: the open page says
"This drop was cancelled" without a reload and offers nothing to buy, the creator's control
room shows it cancelled with its controls off, and the storefront no longer lists it.

The creator acts as an app client would: a session token from allauth's headless login, then
plain HTTP with ``X-Session-Token`` (no browser, no CSRF cookie).
"""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from tests.browser import DESKTOP, MOBILE, login, shot, watch_errors

pytestmark = pytest.mark.browser


def _call(server, method: str, path: str, body=None, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        server["base"] + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", **({"X-Session-Token": token} if token else {})},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read() or b"null")


def _creator_token(server) -> str:
    status, body = _call(
        server, "POST", "/_allauth/app/v1/auth/login", {"email": server["creator"], "password": server["password"]}
    )
    assert status == 200, body
    return body["meta"]["session_token"]


def test_a_viewer_sees_the_drop_cancelled_when_the_creator_cancels_it_over_the_api(server, browser):
    from playwright.sync_api import expect

    token = _creator_token(server)
    starts = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    status, drop = _call(
        server,
        "POST",
        "/api/v1/streams/",
        {"title": "Sunday sample sale", "starts_at": starts.isoformat(), "pins": [server["sku"]]},
        token,
    )
    assert status == 201, drop
    path = f"/streams/{drop['id']}/"

    viewer_ctx = browser.new_context(viewport=MOBILE, is_mobile=True, has_touch=True)
    creator_ctx = browser.new_context(viewport=DESKTOP)
    errors: list[str] = []
    try:
        viewer = viewer_ctx.new_page()
        watch_errors(viewer, errors)
        viewer.goto(server["base"] + "/")
        expect(viewer.locator(f'a[href="{path}"]')).to_be_visible()  # listed while scheduled
        viewer.goto(server["base"] + path)
        expect(viewer.locator("#stream-page")).to_have_attribute("data-realtime", "socket")
        expect(viewer.locator(f'li.pin[data-sku="{server["sku"]}"]')).to_be_visible()
        control = login(creator_ctx, server, server["creator"], f"{path}control/", errors)
        expect(control.locator("#status-pill")).to_have_text("Scheduled")

        status, cancelled = _call(server, "POST", f"/api/v1/streams/{drop['id']}/cancel", None, token)
        assert status == 200 and cancelled["status"] == "cancelled"

        # The open page follows without a reload: told over its socket.
        expect(viewer.locator("#player-status-text")).to_have_text("This drop was cancelled")
        expect(viewer.locator("#status-badge")).to_have_text("CANCELLED")
        expect(viewer.locator("li.pin")).to_have_count(0)
        expect(viewer.locator("#pins")).to_contain_text("Nothing to buy here any more.")
        expect(viewer.locator("#stream-page")).to_have_attribute("data-realtime", "socket")  # not a poll
        shot(viewer, "drop-cancelled-viewer")

        expect(control.locator("#status-pill")).to_have_text("Cancelled")
        expect(control.locator("#starts-at")).to_contain_text("cancelled")
        expect(control.locator("#start-btn")).to_be_disabled()
        expect(control.locator("#end-btn")).to_be_disabled()
        expect(control.locator("#pin-form button")).to_be_disabled()
        expect(control.locator("#pins-body button")).not_to_have_count(0)
        for button in control.locator("#pins-body button").all():
            expect(button).to_be_disabled()
        shot(control, "drop-cancelled-control-room")

        # Reloaded, the page still says so; the storefront no longer lists the drop.
        viewer.reload()
        expect(viewer.locator("#player-status-text")).to_have_text("This drop was cancelled")
        viewer.goto(server["base"] + "/")
        expect(viewer.locator("h1")).to_contain_text("Live drops")
        expect(viewer.locator(f'a[href="{path}"]')).to_have_count(0)
        assert errors == []
    finally:
        viewer_ctx.close()
        creator_ctx.close()
