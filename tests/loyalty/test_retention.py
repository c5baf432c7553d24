"""Retention (docs/loyalty.md, "Retention"): the cohort funnel and badge holders against
other buyers, on constructed orders placed through the buy path, paid at chosen times; the admin
page draws it as SVG and table, and a creator sees only their own shop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.loyalty.models import Award
from apps.loyalty.retention import Group, retention_of
from apps.orders.models import Order
from apps.orders.services import order_place, order_refund
from tests.factories import StaffFactory, make_buyer, make_sku
from tests.loyalty.test_moderation_helpers import make_award, make_badge

pytestmark = pytest.mark.django_db(transaction=True)

# Friday 6 March 2026, 20:00 UTC; its week (in Berlin) starts Monday 2 March.
NOW = datetime(2026, 3, 6, 20, 0, tzinfo=UTC)


def _buy(buyer, sku, at, n=[0]):  # noqa: B006 - a counter for unique keys
    n[0] += 1
    outcome = order_place(buyer=buyer, sku_code=sku.code, idempotency_key=f"ret-{n[0]}", fingerprint=f"f{n[0]}", now=at)
    assert outcome.order is not None and outcome.order.status == Order.Status.PAID, outcome
    # The buy path stamps paid_at with the clock; the constructed history moves it back.
    Order.objects.filter(pk=outcome.order.pk).update(paid_at=at)
    return outcome.order


@pytest.fixture
def shop_data():
    """Week of 23 Feb: A (3 orders), B (1), C (2, the second refunded); week of 2 March:
    D (2), E (1); F's only order was refunded (no purchase)."""
    sku = make_sku(stock=100, price="10.00")
    shop = sku.shop
    owner = shop.owner
    owner.time_zone = "Europe/Berlin"
    owner.save(update_fields=["time_zone"])
    buyers = {name: make_buyer() for name in "ABCDEF"}
    wk1 = datetime(2026, 2, 24, 12, 0, tzinfo=UTC)  # Tuesday
    # Sunday 1 March 23:30 UTC is Monday 2 March 00:30 in Berlin: the second week.
    sunday_late = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    _buy(buyers["A"], sku, wk1)
    _buy(buyers["A"], sku, wk1 + timedelta(days=3))
    _buy(buyers["A"], sku, NOW - timedelta(hours=1))
    _buy(buyers["B"], sku, wk1 + timedelta(days=1))
    _buy(buyers["C"], sku, wk1 + timedelta(days=2))
    second_c = _buy(buyers["C"], sku, NOW - timedelta(hours=2))
    _buy(buyers["D"], sku, sunday_late)
    _buy(buyers["D"], sku, NOW - timedelta(hours=3))
    _buy(buyers["E"], sku, NOW - timedelta(hours=4))
    only_f = _buy(buyers["F"], sku, NOW - timedelta(hours=5))
    staff = StaffFactory()
    order_refund(order=second_c, actor=staff, restock=True, reason="returned")  # C: one purchase left
    order_refund(order=only_f, actor=staff, restock=True, reason="returned")  # F: none
    # An order after ``now`` is not counted yet; another shop's buyers never.
    _buy(buyers["B"], sku, NOW + timedelta(days=1))
    _buy(make_buyer(), make_sku(stock=5), wk1)
    # Badge holders: A (granted) and E (granted); B's award is pending, D's revoked.
    badge = make_badge(shop)
    make_award(badge, user=buyers["A"])
    make_award(badge, user=buyers["E"])
    make_award(badge, user=buyers["B"], status=Award.Status.PENDING)
    make_award(badge, user=buyers["D"], status=Award.Status.REVOKED)
    return shop, buyers


def test_cohorts_and_badge_holders(shop_data):
    shop, _ = shop_data
    retention = retention_of(shop=shop, weeks=3, now=NOW)
    assert retention.time_zone == "Europe/Berlin"
    assert [(c.week.isoformat(), c.buyers, c.repeat, c.rate) for c in retention.cohorts] == [
        ("2026-02-16", 0, 0, None),
        ("2026-02-23", 3, 1, 33.3),  # A repeats; B, C (second order refunded) do not
        ("2026-03-02", 2, 1, 50.0),  # D (first buy Sunday night UTC = Monday in Berlin) repeats; E not
    ]
    assert retention.before == Group(0, 0)
    assert retention.holders == Group(buyers=2, repeat=1)  # A repeats, E not
    assert retention.others == Group(buyers=3, repeat=1)  # B, C, D
    # A shorter window puts the first cohort "before".
    short = retention_of(shop=shop, weeks=1, now=NOW)
    assert [(c.buyers, c.repeat) for c in short.cohorts] == [(2, 1)] and short.before == Group(3, 1)


def test_the_retention_page_shows_the_creators_own_shop_only(client, shop_data):
    shop, _ = shop_data
    other = make_sku(stock=5).shop
    client.force_login(shop.owner)
    index = client.get("/admin/").content.decode()
    assert "/admin/loyalty/award/retention/" in index  # linked from the app list
    page = client.get("/admin/loyalty/award/retention/", {"shop": other.pk})  # ?shop= is ignored for creators
    html = page.content.decode()
    assert page.status_code == 200 and f"Retention: {shop.name}" in html and other.name not in html
    assert '<svg class="retention-chart" id="retention-cohorts"' in html and "<rect" in html
    assert "<script" not in html.split('id="content-main"')[1]  # no script needed
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing from elsewhere
    # All-time figures (the page runs at the real clock, after these constructed dates).
    assert "<th>Badge holders</th><td>2</td><td>1</td><td>50.0 %</td>" in html
    assert html.count("<tr><td>") == 12  # the default window: 12 weekly cohorts
    assert client.get("/admin/loyalty/award/retention/", {"weeks": "26"}).content.decode().count("<tr><td>") == 26
    assert client.get("/admin/loyalty/award/retention/", {"weeks": "x"}).content.decode().count("<tr><td>") == 12

    staff = StaffFactory()
    client.force_login(staff)
    staff_page = client.get("/admin/loyalty/award/retention/", {"shop": other.pk}).content.decode()
    assert f"Retention: {other.name}" in staff_page and 'name="shop"' in staff_page


def test_a_viewer_cannot_open_the_retention_page(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    response = client.get("/admin/loyalty/award/retention/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
