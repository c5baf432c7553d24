"""The creator's first steps in the admin, in Debian's Chromium (Playwright) against a real
daphne: log in at /admin/login/ (not via /accounts/login/ first), see times in their own
zone, create a product with a SKU and its starting stock in one form, pin it from the control
room, and viewers see the real count, not "Sold out".

The ``server`` and ``browser`` fixtures are tests/conftest.py's.
"""

from __future__ import annotations

import re

import pytest

from tests.browser import ARTIFACTS, DESKTOP, STEP_TIMEOUT_MS, watch_errors

pytestmark = pytest.mark.browser


def test_creator_logs_in_at_admin_and_creates_a_stocked_product_viewers_see(server, browser):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    creator_ctx = browser.new_context(viewport=DESKTOP)
    viewer_ctx = browser.new_context(viewport=DESKTOP)
    try:
        admin = creator_ctx.new_page()
        admin.set_default_timeout(STEP_TIMEOUT_MS)
        watch_errors(admin, errors)
        admin.goto(server["base"] + "/admin/")
        admin.wait_for_url("**/admin/login/**")
        admin.fill("input[name=username]", server["creator"])
        admin.fill("input[name=password]", server["password"])
        admin.screenshot(path=str(ARTIFACTS / "admin-login.png"), animations="disabled")
        admin.get_by_role("button", name="Log in").click()
        admin.wait_for_url(re.compile(r"/admin/$"))
        expect(admin.locator("#admin-time-zone")).to_contain_text("Times in Europe/Berlin")
        expect(admin.get_by_role("link", name="Products")).to_be_visible()

        # A product with its SKU and starting stock, in one form.
        admin.goto(server["base"] + "/admin/catalog/product/add/")
        admin.fill("input[name=title]", "Tour hoodie")
        admin.fill("input[name=skus-0-code]", "HOODIE-BROWSER")
        admin.fill("input[name=skus-0-price]", "55.00")
        admin.fill("input[name=skus-0-stock]", "25")
        admin.screenshot(path=str(ARTIFACTS / "admin-product-add.png"), full_page=True, animations="disabled")
        admin.get_by_role("button", name="Save", exact=True).click()
        expect(admin.locator("ul.messagelist")).to_contain_text("was added successfully")
        admin.goto(server["base"] + "/admin/catalog/sku/?q=HOODIE-BROWSER")
        expect(admin.locator("#result_list tbody tr")).to_contain_text("25")

        # Pinned from the control room, it shows its stock to viewers.
        stream_path = f"/streams/{server['stream']}/"
        admin.goto(server["base"] + stream_path + "control/")
        viewer = viewer_ctx.new_page()
        watch_errors(viewer, errors)
        viewer.goto(server["base"] + stream_path)
        expect(viewer.locator("#stream-page")).to_have_attribute("data-realtime", "socket")
        admin.locator("#pin-sku").select_option("HOODIE-BROWSER")
        admin.locator("#pin-form").get_by_role("button", name="Pin").click()
        pin = viewer.locator('li.pin[data-sku="HOODIE-BROWSER"]')
        expect(pin.locator(".stock")).to_have_text("In stock: 25")
        viewer.reload()
        expect(pin.locator(".stock")).to_have_text("In stock: 25")

        # The creator's time zone, changed from the admin header, and back to the admin.
        admin.goto(server["base"] + "/admin/streams/stream/")
        admin.locator("#admin-time-zone").get_by_role("link", name="change").click()
        admin.wait_for_url("**/accounts/time-zone/**")
        admin.locator("select[name=time_zone]").select_option("America/New_York")
        admin.screenshot(path=str(ARTIFACTS / "account-time-zone.png"), animations="disabled")
        admin.get_by_role("button", name="Save").click()
        admin.wait_for_url("**/admin/streams/stream/")
        expect(admin.locator("#admin-time-zone")).to_contain_text("Times in America/New_York")
        assert errors == []
    finally:
        viewer_ctx.close()
        creator_ctx.close()


def test_signup_keeps_the_browsers_time_zone(server, browser):
    from playwright.sync_api import expect

    errors: list[str] = []
    context = browser.new_context(viewport=DESKTOP, timezone_id="Asia/Tokyo")
    try:
        page = context.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        watch_errors(page, errors)
        page.goto(server["base"] + "/accounts/signup/")
        expect(page.locator("input[name=time_zone]")).to_have_value("Asia/Tokyo")
        page.fill("input[name=email]", "tokyo@demo.local")
        page.fill("input[name=password1]", "Tokyo-Drop-2026")
        page.fill("input[name=password2]", "Tokyo-Drop-2026")
        page.locator("form").filter(has=page.locator("input[name=password2]")).locator("[type=submit]").click()
        page.wait_for_url(lambda url: "/accounts/signup/" not in url)
        page.goto(server["base"] + "/accounts/time-zone/")
        expect(page.locator("main")).to_contain_text("shown in Asia/Tokyo")
        expect(page.locator("select[name=time_zone]")).to_have_value("Asia/Tokyo")
        assert errors == []
    finally:
        context.close()
