"""The creator sees the audience heatmap while scheduling a drop in the admin (docs/calendars.md,
"Audience heatmap"), in Debian's Chromium against a real daphne with the demo data: the demo
shop's followers in several zones give it a shape, and the slot typed in the form is marked,
also in a later week, whose counts the page loads from the API."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.browser import DESKTOP, assert_no_sideways_scroll, login, shot

pytestmark = pytest.mark.browser


def test_the_creator_sees_the_heatmap_with_the_chosen_slot_marked(server, browser):
    from playwright.sync_api import expect

    context = browser.new_context(viewport=DESKTOP)
    errors: list[str] = []
    try:
        page = login(context, server, server["creator"], "/admin/streams/stream/add/", errors)
        heatmap = page.locator("#audience-heatmap")
        expect(heatmap).to_be_visible()
        expect(heatmap).to_have_attribute("data-time-zone", "Europe/Berlin")
        expect(page.locator("#audience-summary")).to_contain_text("10 followers")
        expect(heatmap.locator("td.audience-cell")).to_have_count(7 * 24)
        counts = [
            int(c) for c in heatmap.locator("td.audience-cell").evaluate_all("cs => cs.map(c => c.dataset.count)")
        ]
        assert max(counts) > min(counts), "the demo's followers give the heatmap a shape"
        expect(heatmap.locator("td.audience-chosen")).to_have_count(0)

        # A Friday at 20:00, two weeks ahead: the page loads that week and marks the slot.
        friday = date.today() + timedelta(days=14 + (4 - date.today().weekday()) % 7)
        monday = friday - timedelta(days=4)
        page.fill("#id_starts_at_0", friday.isoformat())
        page.fill("#id_starts_at_1", "20:00:00")
        chosen = heatmap.locator("td.audience-chosen")
        expect(chosen).to_have_count(1)
        expect(chosen).to_have_attribute("data-weekday", "4")
        expect(chosen).to_have_attribute("data-hour", "20")
        expect(heatmap).to_have_attribute("data-week-start", monday.isoformat())
        expect(page.locator("#audience-chosen")).to_contain_text("Chosen slot: Fri 20:00")
        expect(heatmap.locator('tr[data-weekday="4"] .audience-date')).to_have_text(friday.strftime("%d %b"))

        # Moving the time moves the mark.
        page.fill("#id_starts_at_1", "09:30:00")
        expect(heatmap.locator('td.audience-chosen[data-weekday="4"][data-hour="9"]')).to_have_count(1)
        expect(heatmap.locator("td.audience-chosen")).to_have_count(1)
        assert_no_sideways_scroll(page)
        page.locator("#audience-panel").scroll_into_view_if_needed()
        shot(page, "calendars-heatmap-admin", full_page=True)
        assert errors == []
    finally:
        context.close()
