"""My orders in a real browser (Debian's Chromium through Playwright, against daphne as in
tests/streams/test_browser.py): a buyer buys twice on a stream page, finds both orders
from the header, opens one with its address and receipt, and does the same on a phone.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import re

import pytest

from tests.browser import ARTIFACTS, DESKTOP, MOBILE, assert_no_sideways_scroll, login, pin, shot

pytestmark = pytest.mark.browser


def test_my_orders_list_and_detail_on_desktop_and_phone(server, browser):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    stream_path = f"/streams/{server['stream']}/"
    errors: list[str] = []
    desktop = browser.new_context(viewport=DESKTOP)
    phone = browser.new_context(viewport=MOBILE, is_mobile=True, has_touch=True, device_scale_factor=2)
    try:
        page = login(desktop, server, server["second"], stream_path, errors)
        expect(page.locator("#stream-page")).to_have_attribute("data-realtime", "socket")
        bodies = []
        page.on("request", lambda r: bodies.append(r.post_data_json) if r.url.endswith("/api/v1/orders/") else None)
        for sku in (server["sku"], "TEE-M"):
            pin(page, sku).get_by_role("button", name=re.compile(r"^Buy")).click()
            expect(pin(page, sku).locator("button.buy")).to_contain_text("Bought")
            # The confirmation leads to the order and its receipt.
            expect(page.locator("#buy-status").get_by_role("link", name="Order & receipt")).to_have_attribute(
                "href", re.compile(r"^/orders/\d+/$")
            )
        # The storefront names the shop through the stream (docs/buying.md, "Naming the shop").
        assert [b.get("stream") for b in bodies] == [server["stream"], server["stream"]]

        # The header leads to the list; newest first, both with their totals and status.
        page.get_by_role("link", name="My orders").click()
        page.wait_for_url("**/orders/")
        cards = page.locator(".order-card")
        expect(cards).to_have_count(2)
        expect(cards.first).to_contain_text("Drop tee, M")
        expect(cards.nth(1)).to_contain_text(server["title"])
        expect(cards.first.locator(".status")).to_have_text("Paid")
        shot(page, "my-orders", full_page=True)

        cards.nth(1).click()
        page.wait_for_url(re.compile(r"/orders/\d+/$"))
        expect(page.locator("h1")).to_contain_text("Order #")
        expect(page.locator(".order-lines")).to_contain_text(server["title"])
        expect(page.locator("address")).to_contain_text("2 Market Street")
        token = page.locator("#receipt-token").input_value()
        assert token.count(".") == 2
        page.get_by_text("How to verify it").click()
        expect(page.locator(".verify")).to_contain_text("/.well-known/jwks.json")
        expect(page.locator(".verify")).to_contain_text("manage.py verify_receipt")
        shot(page, "my-order", full_page=True)
        detail_path = page.url[len(server["base"]) :]

        # The same on a phone: readable, nothing scrolls sideways.
        mobile = login(phone, server, server["second"], "/orders/", errors)
        expect(mobile.locator(".order-card")).to_have_count(2)
        assert_no_sideways_scroll(mobile)
        shot(mobile, "my-orders-mobile", full_page=True)
        mobile.goto(server["base"] + detail_path)
        mobile.get_by_text("How to verify it").click()
        expect(mobile.locator("#receipt-token")).to_have_value(token)
        assert_no_sideways_scroll(mobile)
        shot(mobile, "my-order-mobile", full_page=True)

        # Someone else's order is not there.
        other = mobile.goto(server["base"] + "/orders/999999/")
        assert other.status == 404
        assert errors == []
    finally:
        phone.close()
        desktop.close()


def test_creator_refunds_in_the_admin_staff_finds_the_audit_entry_buyer_sees_refunded(server, browser):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    stream_path = f"/streams/{server['stream']}/"
    errors: list[str] = []
    contexts = [browser.new_context(viewport=DESKTOP) for _ in range(3)]
    buyer_ctx, creator_ctx, staff_ctx = contexts
    try:
        buyer = login(buyer_ctx, server, server["buyer"], stream_path, errors)
        expect(buyer.locator("#stream-page")).to_have_attribute("data-realtime", "socket")
        pin(buyer, "POSTER").get_by_role("button", name=re.compile(r"^Buy")).click()
        link = buyer.locator("#buy-status").get_by_role("link", name="Order & receipt")
        expect(link).to_be_visible()
        order_id = re.search(r"/orders/(\d+)/", link.get_attribute("href")).group(1)

        # The creator sees the order with its address, and refunds it (confirm step first).
        admin = login(creator_ctx, server, server["creator"], f"/admin/orders/order/{order_id}/change/", errors)
        expect(admin.locator(".field-shipping_label")).to_contain_text("Berlin")
        admin.get_by_role("link", name="Refund…").click()
        admin.wait_for_url(f"**/admin/orders/order/{order_id}/refund/")
        admin.get_by_label(re.compile("Put the units back in stock")).check()
        admin.get_by_label("Reason").fill("Poster arrived creased; sent back")
        shot(admin, "admin-refund-confirm", full_page=True)
        admin.get_by_role("button", name=re.compile(r"^Refund ")).click()
        admin.wait_for_url(f"**/admin/orders/order/{order_id}/change/")
        expect(admin.locator(".messagelist")).to_contain_text(f"Order {order_id} refunded")
        expect(admin.locator(".field-status")).to_contain_text("Refunded")
        shot(admin, "admin-order-refunded", full_page=True)

        # Staff find the audit entry by the order's number.
        staff = login(staff_ctx, server, "staff@demo.local", f"/admin/audit/auditentry/?q={order_id}", errors)
        expect(staff.locator("#result_list")).to_contain_text("order.refunded")
        expect(staff.locator("#result_list")).to_contain_text("Poster arrived creased")
        shot(staff, "admin-audit-log", full_page=True)

        # The buyer's order says so.
        buyer.goto(f"{server['base']}/orders/{order_id}/")
        expect(buyer.locator(".order-detail__head .status")).to_have_text("Refunded")
        assert errors == []
    finally:
        for context in contexts:
            context.close()
