"""Step 8's "done when", in a real browser on the demo (docs/loyalty.md): a viewer buys
early in the demo drop and sees the badge pop; staff approve the Superfan awards waiting in
the admin queue (the viewer's pops too) and the viewer's next buy has the 10 % perk taken
off; staff revoke a fan's wrongly awarded Superfan with a reason and its unused perk is
withdrawn, the reason in the audit log; the creator sees the retention chart. Also the
demo's shipping fee, Silver's free shipping on the third order, "Insider" (third order) and
its early access to the deal that opens later, and the receipts showing them."""

from __future__ import annotations

import re

import pytest

from tests.browser import DESKTOP, demo_server, login, pin, shot

pytestmark = pytest.mark.browser

SETUP = r"""
import json
from apps.streams.models import Stream
print("SETUP=" + json.dumps({"stream": Stream.objects.get(title="Friday night drop").pk}))
"""


@pytest.fixture(scope="module")
def loyalty_server():
    with demo_server(SETUP) as srv:
        yield srv


def _changelist_select(page, *, viewer: str, badge: str) -> None:
    """Tick the row of ``viewer``'s ``badge`` award in the admin's award list."""
    row = page.locator("#result_list tbody tr").filter(has_text=viewer).filter(has_text=badge)
    row.locator("input.action-select").check()


def test_badge_pops_staff_approve_perk_applies_staff_revoke_withdraws_creator_sees_retention(loyalty_server, browser):
    from playwright.sync_api import expect

    from apps.accounts.demo import DEMO_PASSWORD, DEMO_USERS

    server = loyalty_server
    stream_path = f"/streams/{server['stream']}/"
    errors: list[str] = []
    viewer_ctx = browser.new_context(viewport=DESKTOP)
    staff_ctx = browser.new_context(viewport=DESKTOP)
    creator_ctx = browser.new_context(viewport=DESKTOP)
    try:
        viewer = login(viewer_ctx, server, DEMO_USERS["viewer"][0], stream_path, errors, password=DEMO_PASSWORD)
        expect(viewer.locator("#stream-page")).to_have_attribute("data-realtime", "socket")

        # 1. An early buy in the drop: "Early supporter" pops on screen (no review needed).
        pin(viewer, "TEE-S").get_by_role("button", name=re.compile(r"^Buy")).click()
        expect(viewer.locator("#buy-status")).to_contain_text("Order #")
        expect(viewer.get_by_text("earned")).to_contain_text("Early supporter")
        badges = viewer.request.get(f"{server['base']}/api/v1/me/badges/").json()
        assert [b["badge"]["name"] for b in badges] == ["Early supporter"]  # Superfan waits for review

        # 2. Staff approve the pending Superfan awards (the viewer's and a fan's) in the queue.
        staff = login(staff_ctx, server, DEMO_USERS["staff"][0], "/admin/", errors, password=DEMO_PASSWORD)
        staff.goto(f"{server['base']}/admin/loyalty/award/?status__exact=pending")
        _changelist_select(staff, viewer=DEMO_USERS["viewer"][0], badge="Superfan")
        _changelist_select(staff, viewer="fan1@demo.local", badge="Superfan")
        staff.select_option("select[name=action]", "approve_selected")
        staff.locator("button[name=index], input[name=index][type=submit], .actions button").first.click()
        expect(staff.locator(".messagelist")).to_contain_text("2 award(s) approved")
        expect(viewer.get_by_text("Demo Viewer earned Superfan")).to_be_visible()  # approved live: it pops now
        perks = viewer.request.get(f"{server['base']}/api/v1/me/perks/").json()
        assert [(p["kind"], p["used_at"]) for p in perks] == [("percent_off", None)]

        # 3. The viewer's next buy has the perk taken off: 29.00 - 10 % = 26.10, plus the demo
        # shop's 4.90 shipping. Spend 33.90 + 31.00 reaches Silver: free shipping next time.
        pin(viewer, "TEE-L").get_by_role("button", name=re.compile(r"^Buy")).click()
        expect(viewer.locator("#buy-status")).to_contain_text("$31.00 (you saved $2.90, incl. $4.90 shipping)")
        perks = viewer.request.get(f"{server['base']}/api/v1/me/perks/").json()
        assert sorted((p["kind"], p["used_at"] is not None) for p in perks) == [
            ("free_shipping", False),
            ("percent_off", True),
        ]

        # 3b. A third order: Silver waives the shipping, and "Insider" pops (early access).
        pin(viewer, "STICKERS").get_by_role("button", name=re.compile(r"^Buy")).click()
        expect(viewer.locator("#buy-status")).to_contain_text("$6.50 (free shipping)")
        expect(viewer.get_by_text("Demo Viewer earned Insider")).to_be_visible()
        shot(viewer, "loyalty-insider-pop")

        # 3c. Early access: the demo's deal on the large tee opens later; the Insider's pin
        # shows it (the price the buy charges) and they buy it now.
        expect(pin(viewer, "TEE-L")).to_contain_text("Early access", timeout=15_000)
        expect(pin(viewer, "TEE-L").locator(".price-now")).to_have_text("$19.00")
        pin(viewer, "TEE-L").get_by_role("button", name=re.compile(r"^Buy")).click()
        # This buy's own confirmation (the one before said "$6.50 (free shipping)").
        expect(viewer.locator("#buy-status")).to_contain_text("$23.90")
        orders = viewer.request.get(f"{server['base']}/api/v1/orders/").json()
        orders = orders["results"] if isinstance(orders, dict) else orders
        early, stickers = orders[0], orders[1]
        assert [a["label"] for a in early["lines"][0]["adjustments"]] == [
            "Flash deal, early (Insider perk: early access)"
        ]
        assert early["total"] == "23.90"  # 19.00 + 4.90 shipping
        assert stickers["shipping"]["adjustments"][0]["label"] == "Silver perk: free shipping"

        # 3d. The receipt page shows the perk and the waived shipping.
        viewer.goto(f"{server['base']}/orders/{stickers['id']}/")
        expect(viewer.locator(".order-shipping")).to_contain_text("Silver perk: free shipping: -4.90")
        shot(viewer, "loyalty-receipt-free-shipping", full_page=True)
        viewer.goto(f"{server['base']}/orders/{early['id']}/")
        expect(viewer.locator(".order-lines")).to_contain_text("Flash deal, early (Insider perk: early access)")
        shot(viewer, "loyalty-receipt-early-access", full_page=True)
        viewer.goto(f"{server['base']}{stream_path}")

        # 4. Staff revoke the fan's Superfan (awarded by mistake) with a reason: its unused
        # perk is withdrawn, and the audit log keeps who, why and what.
        staff.goto(f"{server['base']}/admin/loyalty/award/?status__exact=granted")
        _changelist_select(staff, viewer="fan1@demo.local", badge="Superfan")
        staff.select_option("select[name=action]", "revoke_selected")
        staff.locator(".actions button").first.click()
        expect(staff.get_by_text("1 now")).to_be_visible()  # one unused perk will be withdrawn
        reason = staff.locator("textarea[name=reason], input[name=reason]")
        staff.get_by_role("button", name="Revoke 1 award(s)").click()  # no reason: the browser holds it
        assert reason.evaluate("el => el.required && el.validity.valueMissing")
        expect(staff.get_by_role("button", name="Revoke 1 award(s)")).to_be_visible()  # still on the page
        reason.fill("Awarded by mistake: not at the drop")
        staff.get_by_role("button", name="Revoke 1 award(s)").click()
        expect(staff.locator(".messagelist")).to_contain_text("1 award(s) revoked")
        staff.goto(f"{server['base']}/admin/loyalty/award/?status__exact=revoked")
        staff.locator("#result_list tbody tr").filter(has_text="fan1@demo.local").locator("th a").first.click()
        expect(staff.locator("body")).to_contain_text("Percent off the next order (withdrawn)")
        staff.goto(f"{server['base']}/admin/audit/auditentry/?q=Awarded+by+mistake")
        expect(staff.locator("#result_list")).to_contain_text("badge.revoked")

        # 5. The creator's retention chart.
        creator = login(creator_ctx, server, DEMO_USERS["creator"][0], "/admin/", errors, password=DEMO_PASSWORD)
        creator.goto(f"{server['base']}/admin/loyalty/award/retention/")
        expect(creator.locator("svg").first).to_be_visible()
        expect(creator.locator("body")).to_contain_text("repeat")
        # The demo's past orders fill several weekly cohorts (the bars' tooltips).
        assert creator.locator("svg title").filter(has_text=re.compile(r"[1-9]\d* first-time buyers")).count() >= 5
        shot(creator, "loyalty-retention-creator", full_page=True)
        assert errors == []
    finally:
        for ctx in (viewer_ctx, staff_ctx, creator_ctx):
            ctx.close()
