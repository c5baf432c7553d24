"""Where the loyalty pieces meet (review of issue 17): a granted award and the tier that
requires its badge, one audit entry per staff decision, and bad query input on the
moderation list and the retention page (docs/loyalty.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.loyalty.models import Award, Perk
from apps.loyalty.moderation import award_approve, award_revoke
from apps.orders.models import Order
from tests.factories import StaffFactory, make_buyer, make_sku
from tests.helpers import captured_events

from .perk_helpers import buy, make_award, make_badge, make_tier

pytestmark = pytest.mark.django_db

PAID_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _paid(buyer, sku, quantity):
    status, body = buy(buyer, [(sku.code, quantity)], now=PAID_AT)
    assert status == 201, body
    Order.objects.filter(pk=body["id"]).update(paid_at=PAID_AT)


def test_approving_the_badge_a_tier_requires_grants_the_tiers_perk_and_revoking_takes_it_back():
    """The viewer has the spend; the tier waits only for the badge. Granting the badge
    (here: a staff approval, long after the order) must grant the tier's perk then, not at
    some later order; revoking it withdraws that perk again (tier_recheck)."""
    viewer, sku = make_buyer(), make_sku(price="50.00")
    badge = make_badge(sku.shop, kind="", needs_review=True)
    inner = make_tier(sku.shop, "Inner circle", "10", percent="15", requires_badge=badge)
    _paid(viewer, sku, 1)
    award = make_award(badge, viewer, status=Award.Status.PENDING)
    assert not Perk.objects.filter(user=viewer, tier=inner).exists()

    staff = StaffFactory()
    with captured_events() as events:
        award_approve(award=award, actor=staff, now=NOW)
    perk = Perk.objects.get(user=viewer, tier=inner)
    assert (perk.withdrawn_at, perk.used_at) == (None, None)
    assert [e[1]["tier"] for e in events.of("perk.granted")] == [inner.pk]

    award_revoke(award=award, actor=staff, reason="Rule misfired", now=NOW)
    perk.refresh_from_db()
    assert perk.withdrawn_at == NOW


@pytest.mark.parametrize("query", [{"stream": "²"}, {"badge": "²"}, {"stream": "١٢"}, {"badge": "0x1"}])
def test_a_non_ascii_digit_id_on_the_moderation_list_is_a_400_not_a_500(api_client, query):
    """``str.isdigit`` is true for '²' (int() refuses it) and for Arabic-Indic digits."""
    api_client.force_authenticate(StaffFactory())
    response = api_client.get("/api/v1/moderation/awards/", query)
    assert (response.status_code, response.json()["code"]) == (400, "invalid_query")


def test_a_non_ascii_digit_weeks_on_the_retention_page_is_the_default_not_a_500(client):
    from tests.factories import CreatorFactory

    client.force_login(CreatorFactory())
    response = client.get("/admin/loyalty/award/retention/", {"weeks": "²"})
    assert response.status_code == 200
    assert response.content.decode().count("<tr><td>") == 12


def test_one_staff_approval_is_one_audit_entry_with_the_perks_it_granted():
    """award_grant (with the approver) and award_approve each wrote an entry for the same
    approval: ``badge.granted`` and ``badge.approved``, same actor, same award."""
    from apps.audit.models import AuditEntry

    viewer, sku = make_buyer(), make_sku(price="50.00")
    badge = make_badge(sku.shop, needs_review=True)
    award = make_award(badge, viewer, status=Award.Status.PENDING)
    staff = StaffFactory()
    award_approve(award=award, actor=staff, now=NOW)
    entries = list(AuditEntry.objects.filter(object_id=str(award.pk)))
    assert [(e.action, e.actor) for e in entries] == [("badge.approved", staff)]
    perk = Perk.objects.get(award=award)
    assert entries[0].details["perks"] == [perk.pk]
    assert (entries[0].details["badge"], entries[0].details["user"]) == (badge.pk, viewer.pk)
