"""Each user's whole journey, as a person would follow it, in Debian's Chromium (Playwright)
against a real daphne over a fresh install made by the README's demo command (``migrate`` +
``seed_demo``): nothing is prepared behind the browser's back except what an operator does
on the command line (``manage.py grant_role``). Screenshots go to ``test-artifacts/journey-*``.

- Creator: signs up -> is made a creator (one by ``grant_role``, one by staff in the admin)
  -> logs in at /admin/ -> creates a product with SKUs and stock -> schedules a drop for
  tomorrow, in their own time zone, with pins and a flash deal -> starts it from the control
  room -> watches a sale arrive live -> sees the order with its shipping address -> refunds it.
- Buyer: first visit -> signs up -> first buy through the express-checkout sheet -> one-tap
  buy -> "My orders" shows both with receipts (one verified with PyJWT against the published
  keys) -> the same on a phone-sized screen.
- Staff: logs in at /admin/ -> sees every shop and every shop's orders -> refunds an order
  -> finds the audit entry.

The three tests share one server and run in this order; each makes the accounts it needs.
"""

from __future__ import annotations

import json
import re
import urllib.request
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.browser import (
    DESKTOP,
    MOBILE,
    TIMES,
    assert_no_sideways_scroll,
    demo_server,
    login,
    manage,
    new_page,
    pin,
    shot,
)

pytestmark = pytest.mark.browser

PASSWORD = "Journey-Pass-2026"
DEMO_PASSWORD = "demo-pass-2026"  # seed_demo's, printed by the demo command


@pytest.fixture(scope="module")
def server():
    """The demo exactly as the README's demo command seeds it: no extra set-up."""
    with demo_server() as srv:
        yield {**srv, "password": DEMO_PASSWORD}


def _signup(context, server, email: str, errors: list):
    """allauth's sign-up page, as a first-time visitor fills it in."""
    page = new_page(context, errors)
    page.goto(server["base"] + "/")
    page.get_by_role("link", name="Sign up").click()
    page.wait_for_url("**/accounts/signup/**")
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.locator("form").filter(has=page.locator("input[name=password2]")).locator("[type=submit]").click()
    page.wait_for_url(lambda url: "/accounts/signup/" not in url)
    return page


def _admin_login(context, server, email: str, password: str, errors: list):
    """The admin's own login form (not /accounts/login/ first)."""
    page = new_page(context, errors)
    page.goto(server["base"] + "/admin/")
    page.wait_for_url("**/admin/login/**")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    return page


def _choose(page, select: str, text: str) -> None:
    """Pick the option of a <select> whose label contains ``text`` (as a person reads it)."""
    value = page.locator(f"{select} option", has_text=text).first.get_attribute("value")
    page.locator(select).select_option(value)


def _api(page, path: str) -> dict:
    """A GET with the page's session, as the page's own scripts would make it."""
    response = page.request.get(page.url.split("/", 3)[0] + "//" + page.url.split("/", 3)[2] + path)
    assert response.ok, f"{path}: {response.status} {response.text()}"
    return response.json()


def test_creator_journey(server, browser):
    from playwright.sync_api import expect

    zone = ZoneInfo("America/New_York")
    errors: list[str] = []
    # The creator's browser is in New York: signing up keeps that zone on the account.
    creator_ctx = browser.new_context(viewport=DESKTOP, timezone_id="America/New_York")
    staff_ctx = browser.new_context(viewport=DESKTOP)
    other_ctx = browser.new_context(viewport=DESKTOP)
    buyer_ctx = browser.new_context(viewport=DESKTOP)
    try:
        # 1. Two people sign up in the browser.
        page = _signup(creator_ctx, server, "maker@journey.test", errors)
        shot(page, "journey-creator-1-signed-up")
        _signup(other_ctx, server, "second-maker@journey.test", errors).close()

        # 2. An operator makes the first a creator on the command line...
        manage(server["env"], "grant_role", "maker@journey.test", "creator")
        # ...and staff make the second one a creator by ticking the box in the admin.
        staff = _admin_login(staff_ctx, server, "staff@demo.local", DEMO_PASSWORD, errors)
        staff.goto(server["base"] + "/admin/accounts/user/?q=second-maker")
        staff.get_by_role("link", name="second-maker@journey.test").click()
        staff.get_by_label("Is creator").check()
        staff.get_by_role("button", name="Save", exact=True).click()
        expect(staff.locator("ul.messagelist")).to_contain_text("was changed successfully")
        staff.goto(server["base"] + "/admin/accounts/shop/?q=second-maker")
        expect(staff.locator("#result_list")).to_contain_text("second-maker@journey.test")
        # The admin-made creator logs in at /admin/ (a fresh session) and sees their own
        # shop, nobody else's.
        other_ctx.clear_cookies()
        other = _admin_login(other_ctx, server, "second-maker@journey.test", PASSWORD, errors)
        other.goto(server["base"] + "/admin/accounts/shop/")
        expect(other.locator("#result_list tbody tr")).to_have_count(1)
        expect(other.locator("#result_list")).not_to_contain_text("Demo Studio")

        # 3. The first creator logs in at /admin/ (a fresh session), in their own zone.
        creator_ctx.clear_cookies()
        admin = _admin_login(creator_ctx, server, "maker@journey.test", PASSWORD, errors)
        expect(admin.locator("#admin-time-zone")).to_contain_text("Times in America/New_York")
        shot(admin, "journey-creator-2-admin")

        # 4. A product with two SKUs and their starting stock, in one form.
        admin.goto(server["base"] + "/admin/catalog/product/add/")
        admin.fill("input[name=title]", "Journey hoodie")
        admin.fill("input[name=skus-0-code]", "JH-M")
        admin.fill("input[name=skus-0-price]", "55.00")
        admin.fill("input[name=skus-0-stock]", "30")
        admin.locator("#skus-group .add-row a").click()
        admin.fill("input[name=skus-1-code]", "JH-L")
        admin.fill("input[name=skus-1-price]", "55.00")
        admin.fill("input[name=skus-1-stock]", "20")
        shot(admin, "journey-creator-3-product", full_page=True)
        admin.get_by_role("button", name="Save", exact=True).click()
        expect(admin.locator("ul.messagelist")).to_contain_text("was added successfully")
        admin.goto(server["base"] + "/admin/catalog/sku/?q=JH-")
        rows = admin.locator("#result_list tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.filter(has_text="JH-M")).to_contain_text("30")
        expect(rows.filter(has_text="JH-L")).to_contain_text("20")

        # 5. A drop for tomorrow at 20:00 in New York, with both SKUs pinned and a flash deal
        # on the M from 20:00 to 21:00.
        tomorrow = (datetime.now(zone) + timedelta(days=1)).date()
        starts = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 20, 0, tzinfo=zone)
        admin.goto(server["base"] + "/admin/streams/stream/add/")
        admin.fill("input[name=title]", "Hoodie drop")
        admin.fill("input[name=starts_at_0]", tomorrow.isoformat())
        admin.fill("input[name=starts_at_1]", "20:00")
        for n, code in enumerate(("JH-M", "JH-L")):
            admin.locator("#pins-group .add-row a").click()
            _choose(admin, f"select[name=pins-{n}-sku]", code)
        admin.locator("#deals-group .add-row a").click()
        _choose(admin, "select[name=deals-0-sku]", "JH-M")
        admin.fill("input[name=deals-0-price]", "39.00")
        admin.fill("input[name=deals-0-quantity]", "10")
        admin.fill("input[name=deals-0-per_buyer_limit]", "1")
        admin.fill("input[name=deals-0-opens_at_0]", tomorrow.isoformat())
        admin.fill("input[name=deals-0-opens_at_1]", "20:00")
        admin.fill("input[name=deals-0-closes_at_0]", tomorrow.isoformat())
        admin.fill("input[name=deals-0-closes_at_1]", "21:00")
        shot(admin, "journey-creator-4-schedule", full_page=True)
        admin.get_by_role("button", name="Save and continue editing").click()
        expect(admin.locator("ul.messagelist")).to_contain_text("was added successfully")
        assert_no_sideways_scroll(admin)
        stream_id = int(re.search(r"/stream/(\d+)/change/", admin.url).group(1))
        # Stored as the instant the creator meant: 20:00 in New York, whatever UTC says.
        stream = _api(admin, f"/api/v1/streams/{stream_id}/")
        assert datetime.fromisoformat(stream["starts_at"].replace("Z", "+00:00")) == starts
        assert stream["status"] == "scheduled"
        assert {p["sku"] for p in stream["pins"]} == {"JH-M", "JH-L"}
        # The stream list shows the creator's local time, not UTC.
        admin.goto(server["base"] + "/admin/streams/stream/")
        expect(admin.locator("#result_list")).to_contain_text("8 p.m.")

        # 6. The control room: the deal waits for its time; the creator goes live now.
        admin.goto(server["base"] + f"/admin/streams/stream/{stream_id}/change/")
        admin.get_by_role("link", name="Open the control room").click()
        admin.wait_for_url(f"**/streams/{stream_id}/control/")
        control = admin
        expect(control.locator("#deals")).to_contain_text(re.compile(r"Opens .*(08:00 PM|20:00) (EST|EDT)"))
        expect(control.locator("#sales-feed")).to_contain_text("No sales yet")
        control.on("dialog", lambda dialog: dialog.accept())
        control.locator("#start-btn").click()
        expect(control.locator("#status-pill")).to_have_text("Live")
        expect(control.locator("#starts-at")).to_contain_text("live since")

        # 7. A viewer (the demo viewer: saved card and address) buys with one tap; the sale
        # arrives in the control room without a reload.
        buyer = login(buyer_ctx, server, "viewer@demo.local", f"/streams/{stream_id}/")
        expect(pin(buyer, "JH-L").locator(".stock")).to_have_text("In stock: 20")
        pin(buyer, "JH-L").get_by_role("button", name=re.compile(r"^Buy")).click()
        expect(buyer.locator("#buy-status")).to_contain_text("confirmed")
        expect(control.locator("#kpi-orders")).to_have_text("1")
        expect(control.locator("#sales-feed")).to_contain_text(f"1 {TIMES} ")
        expect(control.locator("#sales-feed")).not_to_contain_text("No sales yet")
        expect(control.locator('#pins-body tr[data-sku="JH-L"]')).to_contain_text("19")
        shot(control, "journey-creator-5-control-room", full_page=True)

        # 8. The order, with where to ship it.
        control.goto(server["base"] + "/admin/orders/order/")
        control.locator("#result_list tbody tr").first.locator("th a").click()
        expect(control.locator(".field-shipping_label")).to_contain_text("1 Market Street")
        expect(control.locator(".field-shipping_label")).to_contain_text("Berlin")
        shot(control, "journey-creator-6-order", full_page=True)

        # 9. The creator refunds it and puts the unit back; the viewer's counter follows.
        control.get_by_role("link", name="Refund…").click()
        control.get_by_label(re.compile("Put the units back in stock")).check()
        control.get_by_label("Reason").fill("Wrong size; the buyer asked to cancel")
        control.get_by_role("button", name=re.compile(r"^Refund ")).click()
        expect(control.locator(".messagelist")).to_contain_text("refunded")
        expect(control.locator(".field-status")).to_contain_text("Refunded")
        expect(pin(buyer, "JH-L").locator(".stock")).to_have_text("In stock: 20")
        shot(control, "journey-creator-7-refunded", full_page=True)
        assert errors == []
    finally:
        for context in (creator_ctx, staff_ctx, other_ctx, buyer_ctx):
            context.close()


def _jwks(server) -> dict:
    with urllib.request.urlopen(server["base"] + "/.well-known/jwks.json", timeout=10) as response:
        return json.load(response)


def _my_orders(page, server, expected: int):
    from playwright.sync_api import expect

    page.goto(server["base"] + "/")
    page.get_by_role("link", name="My orders").click()
    page.wait_for_url("**/orders/")
    rows = page.locator("main").get_by_role("link", name=re.compile(r"^Order"))
    expect(rows).to_have_count(expected)
    return rows


def test_buyer_journey(server, browser):
    import jwt
    from playwright.sync_api import expect

    errors: list[str] = []
    desktop = browser.new_context(viewport=DESKTOP)
    try:
        # 1. First visit: the home page shows what is live, and anyone can watch.
        page = new_page(desktop, errors)
        page.goto(server["base"] + "/")
        page.locator("a[href^='/streams/']").first.click()
        page.wait_for_url(re.compile(r"/streams/\d+/$"))
        stream_path = re.search(r"/streams/\d+/$", page.url).group(0)
        expect(page.locator("#stream-page")).to_have_attribute("data-realtime", "socket")
        shot(page, "journey-buyer-1-first-visit")
        skus = page.locator("li.pin").evaluate_all("els => els.map(e => e.dataset.sku)")
        assert len(skus) >= 2

        # 2. Signs up, and comes back to the stream.
        _signup(desktop, server, "fan@journey.test", errors).close()
        page.goto(server["base"] + stream_path)
        first, second = skus[-1], skus[-2]

        # 3. The first buy opens the express-checkout sheet: card and address once.
        pin(page, first).get_by_role("button", name=re.compile(r"^Buy")).click()
        sheet = page.locator("#checkout-sheet")
        expect(sheet).to_be_visible()
        sheet.locator("input[name=name]").fill("Fan Journey")
        sheet.locator("input[name=line1]").fill("5 Harbour Road")
        sheet.locator("input[name=city]").fill("Hamburg")
        sheet.locator("input[name=postal_code]").fill("20457")
        sheet.locator("input[name=country]").fill("de")
        shot(page, "journey-buyer-2-checkout-sheet")
        sheet.get_by_role("button", name="Save and buy").click()
        expect(sheet).to_be_hidden()
        expect(page.locator("#buy-status")).to_contain_text("confirmed")

        # 4. The next buy is one tap: no sheet.
        pin(page, second).get_by_role("button", name=re.compile(r"^Buy")).click()
        expect(page.locator("#buy-status")).to_contain_text("confirmed")
        expect(sheet).to_be_hidden()
        shot(page, "journey-buyer-3-one-tap")

        # 5. "My orders", from the header: both orders, each with its receipt.
        rows = _my_orders(page, server, 2)
        shot(page, "journey-buyer-4-my-orders", full_page=True)
        rows.first.click()
        expect(page.locator("main")).to_contain_text("5 Harbour Road")
        expect(page.locator("main")).to_contain_text("Hamburg")
        token = page.get_by_label("Receipt token").input_value().strip()
        expect(page.locator("main")).to_contain_text("/.well-known/jwks.json")
        shot(page, "journey-buyer-5-order", full_page=True)
        # The receipt verifies with an ordinary JOSE library against the published keys.
        header = jwt.get_unverified_header(token)
        key = next(k for k in _jwks(server)["keys"] if k["kid"] == header["kid"])
        claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["EdDSA"])
        assert str(claims["order"]) in page.url

        # 6. The same on a phone: the header link, both orders, no sideways scrolling.
        phone = browser.new_context(viewport=MOBILE, is_mobile=True, has_touch=True, device_scale_factor=2)
        try:
            mobile = login(phone, server, "fan@journey.test", "/", errors, password=PASSWORD)
            _my_orders(mobile, server, 2)
            assert_no_sideways_scroll(mobile)
            shot(mobile, "journey-buyer-6-my-orders-phone", full_page=True)
            mobile.locator("main").get_by_role("link", name=re.compile(r"^Order")).first.click()
            expect(mobile.locator("main")).to_contain_text("5 Harbour Road")
            assert_no_sideways_scroll(mobile)
            shot(mobile, "journey-buyer-7-order-phone", full_page=True)
        finally:
            phone.close()
        assert errors == []
    finally:
        desktop.close()


def test_staff_journey(server, browser):
    from playwright.sync_api import expect

    errors: list[str] = []
    context = browser.new_context(viewport=DESKTOP)
    try:
        # 1. Staff log in at /admin/ and see every shop, including ones created today.
        staff = _admin_login(context, server, "staff@demo.local", DEMO_PASSWORD, errors)
        staff.goto(server["base"] + "/admin/accounts/shop/")
        shops = staff.locator("#result_list tbody tr")
        expect(shops.filter(has_text="Demo Studio")).to_have_count(1)
        # Every shop on the node, not one creator's: as many rows as the database has shops.
        out = manage(server["env"], "shell", "-c", "from apps.accounts.models import Shop; print(Shop.objects.count())")
        expect(shops).to_have_count(int(out.strip().splitlines()[-1]))
        shot(staff, "journey-staff-1-shops")

        # 2. A viewer buys on the demo's live stream (one tap)...
        buyer_ctx = browser.new_context(viewport=DESKTOP)
        try:
            buyer = login(buyer_ctx, server, "viewer@demo.local", "/", errors)
            buyer.locator("a[href^='/streams/']").first.click()
            expect(buyer.locator("#stream-page")).to_have_attribute("data-realtime", "socket")
            buyer.locator("li.pin button.buy").first.click()
            link = buyer.locator("#buy-status").get_by_role("link", name="Order & receipt")
            expect(link).to_be_visible()
            order_id = re.search(r"/orders/(\d+)/", link.get_attribute("href")).group(1)
        finally:
            buyer_ctx.close()
        # ...and staff find it among every shop's orders.
        staff.goto(server["base"] + "/admin/orders/order/")
        staff.locator("#searchbar").fill(order_id)
        staff.locator("#searchbar").press("Enter")
        staff.locator("#result_list tbody tr th a", has_text=order_id).first.click()
        staff.wait_for_url(re.compile(rf"/admin/orders/order/{order_id}/change/"))
        expect(staff.locator(".field-status")).to_contain_text("Paid")

        # 3. Refund it, leaving the stock as it is.
        staff.get_by_role("link", name="Refund…").click()
        staff.get_by_label(re.compile("Leave the stock as it is")).check()
        staff.get_by_label("Reason").fill("Chargeback risk: refunded on the buyer's request")
        staff.get_by_role("button", name=re.compile(r"^Refund ")).click()
        expect(staff.locator(".messagelist")).to_contain_text(f"Order {order_id} refunded")
        shot(staff, "journey-staff-2-refunded", full_page=True)

        # 4. The audit log has it: who, what, why.
        staff.goto(server["base"] + "/admin/")
        staff.get_by_role("link", name="Audit entries").first.click()
        staff.locator("#searchbar").fill(order_id)
        staff.locator("#searchbar").press("Enter")
        entries = staff.locator("#result_list")
        expect(entries).to_contain_text("order.refunded")
        expect(entries).to_contain_text("staff@demo.local")
        expect(entries).to_contain_text("Chargeback risk")
        shot(staff, "journey-staff-3-audit", full_page=True)
        assert errors == []
    finally:
        context.close()
