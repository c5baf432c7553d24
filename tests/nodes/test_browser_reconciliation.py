"""Reconciliation in the admin (docs/edge.md, "Reconciliation") in Debian's Chromium against
a real daphne, as a staff member on call reads it: which edge is behind, by how much and
since when (in the staff member's own time zone), which days differ and by how much, what
to do, on a desk and on a phone; a creator gets 403. The cloud's state is made by the real
registration and ingest (tests/nodes/recon_state.py): an edge in sync, one with a gap and
lag, one whose totals differ with an event not applied, one never synced at a venue a
creator named with markup."""

from __future__ import annotations

import pytest

from tests.browser import DESKTOP, MOBILE, assert_no_sideways_scroll, demo_server, login, shot

pytestmark = pytest.mark.browser

RECON_SETUP = r"""
import json
from tests.nodes.recon_state import build
print("SETUP=" + json.dumps(build()))
"""


@pytest.fixture(scope="module")
def recon_server():
    # No seed_demo: build() makes the demo users and shop itself (saves ~10 s).
    with demo_server(RECON_SETUP, seed=False) as srv:
        yield srv


def test_staff_see_which_edge_is_behind_what_differs_and_what_to_do(recon_server, browser):
    from playwright.sync_api import expect

    from tests.nodes.recon_state import SPARE_VENUE

    server, base = recon_server, recon_server["base"]
    nodes = server["nodes"]
    errors: list[str] = []
    dialogs: list[str] = []
    staff_ctx = browser.new_context(viewport=DESKTOP)
    phone_ctx = browser.new_context(viewport=MOBILE, is_mobile=True, has_touch=True)
    creator_ctx = browser.new_context(viewport=DESKTOP)
    try:
        staff = login(staff_ctx, server, server["staff"], "/admin/nodes/node/reconciliation/", errors)
        staff.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        expect(staff.locator("#admin-time-zone")).to_contain_text(f"Times in {server['staff_time_zone']}")

        # The overview: every edge, the ones needing a look highlighted, with what and how much.
        rows = staff.locator("#result_list tbody tr")
        expect(rows).to_have_count(4)
        berlin, hamburg, munich, spare = (staff.locator(f'tr[data-node="{n}"]') for n in nodes)
        expect(berlin).not_to_have_class("mismatch")
        expect(berlin.locator(".recon-attention")).to_have_text("in sync")
        expect(hamburg).to_have_class("mismatch")
        expect(hamburg.locator(".recon-attention")).to_contain_text("behind by 13 events (2 h 56 min)")
        expect(hamburg.locator(".recon-attention")).to_contain_text("missing 6-8")
        expect(munich).to_have_class("mismatch")
        expect(munich.locator(".recon-attention")).to_contain_text("totals differ (2 days)")
        expect(munich.locator(".recon-attention")).to_contain_text("1 event not applied")
        expect(munich.locator(".recon-attention")).to_contain_text("1 offline capture pending")
        expect(spare.locator(".recon-attention")).to_have_text("nothing received yet")
        # A creator's location name is shown as text, never run.
        expect(spare).to_contain_text(SPARE_VENUE)
        shot(staff, "recon-overview")

        # From the nodes list, "Reconcile" opens the node's page: the gap, the lag and since when.
        staff.goto(base + "/admin/nodes/node/")
        staff.locator("#result_list tr", has_text="venue-hamburg").get_by_role("link", name="Reconcile").click()
        staff.wait_for_url(f"**/admin/nodes/node/{nodes['venue-hamburg']}/reconciliation/")
        expect(staff.locator("#recon-gaps")).to_have_text("6-8")
        lag = staff.locator("#recon-lag")
        expect(lag).to_contain_text("13 events, 2 h 56 min")
        # Since when, in the staff member's zone (not the server's UTC).
        expect(lag).to_contain_text(f"until {server['hamburg_acked_at']['staff']}")
        assert server["hamburg_acked_at"]["utc"] not in lag.inner_text()
        expect(staff.locator("#recon-todo")).to_contain_text("sends everything after 5 again")
        expect(staff.locator("#recon-match")).to_contain_text("+9 orders · +9 units · USD +58.50")
        expect(staff.locator("#recon-days tr.mismatch")).to_have_count(server["hamburg_days_differ"])
        shot(staff, "recon-node-gap", full_page=True)

        # On a phone: the node whose totals differ without lag, which days and by how much.
        phone = login(phone_ctx, server, server["staff"], f"/admin/nodes/node/{nodes['venue-munich']}/reconciliation/")
        days = server["munich_days"]
        for day in (days["unresolved"], days["reported_more"]):
            row = phone.locator(f'#recon-days tr[data-date="{day}"]')
            expect(row).to_have_class("mismatch")
            expect(row.locator(".recon-difference")).to_have_text("+1 order · +1 unit · USD +29.00")
        expect(phone.locator("#recon-days tr.mismatch")).to_have_count(2)
        expect(phone.locator("#recon-unresolved")).to_contain_text("1 event held but not applied")
        expect(phone.locator("#content-main")).to_contain_text("no SKU 'TEE-XL'")
        expect(phone.locator("#recon-todo")).to_contain_text("The cloud does not retry them")
        pending = phone.locator("#recon-pending")
        expect(pending).to_contain_text("1 order accepted offline and not captured yet: USD 51.50")
        assert_no_sideways_scroll(phone)
        shot(phone, "recon-node-mismatch-phone", full_page=True)
        phone.goto(base + "/admin/nodes/node/reconciliation/")
        expect(phone.locator('tr[data-node="venue-hamburg"] .recon-attention')).to_be_visible()
        assert_no_sideways_scroll(phone)

        # A creator is refused both pages.
        creator = login(creator_ctx, server, server["creator"], "/admin/")
        for path in ("/admin/nodes/node/reconciliation/", f"/admin/nodes/node/{nodes['venue-munich']}/reconciliation/"):
            assert creator.goto(base + path).status == 403
        assert dialogs == [] and errors == [], (dialogs, errors)
    finally:
        creator_ctx.close()
        phone_ctx.close()
        staff_ctx.close()
