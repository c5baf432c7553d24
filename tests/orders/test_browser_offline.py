"""Offline selling as a buyer sees it (docs/buying.md, "Offline selling"): on an edge node
whose test gateway is switched off, a tap on Buy says the order was accepted offline, the
receipt signed and capture pending; the order page says so, and says "captured" once the
gateway is back and the capture sweep ran."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from tests.browser import DESKTOP, STREAM_SETUP, chromium, demo_server, login, manage, pin, shot

pytestmark = pytest.mark.browser

CAPTURE_NOW = (
    "from datetime import timedelta; from django.utils import timezone; "
    "from apps.orders.services import orders_capture_offline; "
    "print(orders_capture_offline(now=timezone.now() + timedelta(days=1)))"
)


def test_a_buy_accepted_offline_then_captured():
    from playwright.sync_api import expect

    down = Path(tempfile.mkdtemp(prefix="cc-gateway-")) / "down"
    # An edge whose cloud is unreachable too (nothing listens on port 9): buyers see no
    # difference (docs/edge.md), the relay only waits.
    env = {
        "NODE_ROLE": "edge",
        "NODE_ID": "edge-browser",
        "CLOUD_URL": "http://127.0.0.1:9",
        "TEST_GATEWAY_DOWN_FILE": str(down),
    }
    with demo_server(STREAM_SETUP, extra_env=env) as server, chromium() as browser:
        manage(server["env"], "test_gateway", "down")
        assert down.exists()
        context = browser.new_context(viewport=DESKTOP)
        errors: list[str] = []
        try:
            stream_path = f"/streams/{server['stream']}/"
            page = login(context, server, server["buyer"], stream_path, errors)
            pin(page, server["sku"]).get_by_role("button", name=re.compile(r"^Buy")).click()
            status = page.locator("#buy-status")
            expect(status).to_contain_text("accepted offline")
            expect(status).to_contain_text("receipt is signed; capture is pending")
            shot(page, "offline-buy-accepted")
            status.get_by_role("link", name="Order & receipt").click()
            expect(page.locator(".offline-note")).to_contain_text("Capture is pending")
            expect(page.locator(".status")).to_contain_text("Accepted offline")
            shot(page, "offline-order-pending")

            manage(server["env"], "test_gateway", "up")
            assert "'paid': 1" in manage(server["env"], "shell", "-c", CAPTURE_NOW)
            page.reload()
            expect(page.locator(".offline-note")).to_contain_text("Payment captured")
            expect(page.locator(".status")).to_contain_text("Paid")
            assert not errors, errors
        finally:
            context.close()
            down.unlink(missing_ok=True)
            down.parent.rmdir()
