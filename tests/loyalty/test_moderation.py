"""Staff moderation services (docs/loyalty.md, "Staff moderation"): approve, revoke with a
required reason (unused perks withdrawn, used ones kept and recorded), bulk all or nothing,
staff only, one audit entry per decision, and the exact ``badge.revoked`` event."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apps.audit.models import AuditEntry
from apps.loyalty.models import Award, Perk
from apps.loyalty.moderation import (
    AwardNotPending,
    ModerationNotAllowed,
    ReasonRequired,
    award_approve,
    award_revoke,
    awards_approve,
    awards_revoke,
)
from tests.factories import StaffFactory, UserFactory
from tests.helpers import captured_events
from tests.loyalty.test_moderation_helpers import NOW, make_award, make_badge, make_perk

pytestmark = pytest.mark.django_db


def _state(*awards):
    return [Award.objects.filter(pk=a.pk).values_list("status", "reason", "decided_by_id").get() for a in awards]


@pytest.mark.parametrize("reason", ["", "   \n", None])
def test_revoke_requires_a_reason_and_writes_nothing_without_one(reason):
    award = make_award()
    perk = make_perk(award)
    before = _state(award)
    with captured_events() as events, pytest.raises(ReasonRequired) as raised:
        award_revoke(award=award, actor=StaffFactory(), reason=reason, now=NOW)
    assert raised.value.code == "reason_required" and raised.value.status == 400
    assert _state(award) == before and events == []
    assert Perk.objects.get(pk=perk.pk).withdrawn_at is None
    assert not AuditEntry.objects.exists()


def test_revoke_withdraws_unused_perks_keeps_used_ones_and_records_both():
    badge = make_badge()
    unused_award, used_award = make_award(badge), make_award(badge)
    unused, used = make_perk(unused_award), make_perk(used_award, used=True)
    staff = StaffFactory()
    later = NOW + timedelta(hours=1)

    with captured_events() as events:
        done = awards_revoke(awards=[used_award, unused_award], actor=staff, reason="  Rule misfired  ", now=later)

    assert [a.pk for a in done] == sorted([unused_award.pk, used_award.pk])
    for award in done:
        award.refresh_from_db()
        assert (award.status, award.reason, award.decided_by, award.decided_at) == (
            "revoked",
            "Rule misfired",
            staff,
            later,
        )
    assert Perk.objects.get(pk=unused.pk).withdrawn_at == later
    kept = Perk.objects.get(pk=used.pk)
    assert kept.withdrawn_at is None and kept.used_at == NOW  # used: not clawed back

    def revoked(award, withdrawn, kept):
        payload = {
            "award": award.pk,
            "badge": badge.pk,
            "shop": badge.shop_id,
            "user": award.user_id,
            "stream": None,
            "withdrawn": withdrawn,
            "kept": kept,
            "held": [],
        }
        return ("badge.revoked", payload, [f"shop.{badge.shop_id}"])

    assert sorted(events.of("badge.revoked"), key=lambda e: e[1]["award"]) == sorted(
        [revoked(unused_award, [unused.pk], []), revoked(used_award, [], [used.pk])], key=lambda e: e[1]["award"]
    )

    entries = {e.object_id: e for e in AuditEntry.objects.filter(action="badge.revoked")}
    assert set(entries) == {str(unused_award.pk), str(used_award.pk)}
    used_entry = entries[str(used_award.pk)]
    assert (
        used_entry.actor,
        used_entry.actor_label,
        used_entry.reason,
        used_entry.shop_id,
        used_entry.object_type,
    ) == (
        staff,
        staff.email,
        "Rule misfired",
        badge.shop_id,
        "loyalty.award",
    )
    assert used_entry.details["withdrawn_perks"] == []
    assert used_entry.details["used_perks_kept"] == [
        {"perk": used.pk, "kind": "percent_off", "used_at": NOW.isoformat(), "order": None}
    ]
    assert entries[str(unused_award.pk)].details["withdrawn_perks"] == [unused.pk]
    assert entries[str(unused_award.pk)].details["was"] == "granted"


def test_a_pending_award_can_be_revoked_and_a_second_revoke_changes_nothing():
    award = make_award(make_badge(needs_review=True), status=Award.Status.PENDING)
    staff = StaffFactory()
    award_revoke(award=award, actor=staff, reason="Duplicate account", now=NOW)
    assert _state(award) == [("revoked", "Duplicate account", staff.pk)]

    with captured_events() as events:
        again = award_revoke(award=award, actor=StaffFactory(), reason="Another reason", now=NOW)
    assert events == [] and again.reason == "Duplicate account"
    assert _state(award) == [("revoked", "Duplicate account", staff.pk)]
    assert AuditEntry.objects.filter(action="badge.revoked").count() == 1


def test_approve_grants_a_pending_award_and_records_who_approved():
    badge = make_badge(needs_review=True)
    award = make_award(badge, status=Award.Status.PENDING)
    staff = StaffFactory()
    with captured_events() as events:
        approved = award_approve(award=award, actor=staff, now=NOW)
    assert (approved.status, approved.decided_by, approved.decided_at) == ("granted", staff, NOW)
    entry = AuditEntry.objects.get()  # the approval's one entry (award_grant writes it)
    assert (entry.action, entry.actor, entry.object_id, entry.shop_id) == (
        "badge.approved",
        staff,
        str(award.pk),
        badge.shop_id,
    )
    perk = Perk.objects.get(award=award)
    assert entry.details == {
        "badge": badge.pk,
        "badge_name": badge.name,
        "user": award.user_id,
        "scope": "",
        "stream": None,
        "approved": True,
        "perks": [perk.pk],
    }
    # The grant is award_grant's (apps/loyalty/awards.py): the badge's perk is the viewer's now.
    assert Perk.objects.filter(award=award, withdrawn_at__isnull=True).count() == 1
    assert events.of("badge.revoked") == []  # badge.awarded (award_grant's) says it is granted


@pytest.mark.parametrize("status", [Award.Status.GRANTED, Award.Status.REVOKED])
def test_only_a_pending_award_can_be_approved(status):
    award = make_award(status=status)
    with pytest.raises(AwardNotPending) as raised:
        award_approve(award=award, actor=StaffFactory(), now=NOW)
    assert (raised.value.status, raised.value.code) == (409, "award_not_pending")
    assert not AuditEntry.objects.exists()


def test_bulk_approve_is_all_or_nothing():
    badge = make_badge(needs_review=True)
    pending = [make_award(badge, status=Award.Status.PENDING) for _ in range(3)]
    granted = make_award(badge)
    with pytest.raises(AwardNotPending) as raised:
        awards_approve(awards=[*pending, granted], actor=StaffFactory())
    assert raised.value.details == {"awards": [granted.pk]}
    assert {a.status for a in Award.objects.filter(pk__in=[p.pk for p in pending])} == {"pending"}
    assert not AuditEntry.objects.exists()

    done = awards_approve(awards=pending, actor=StaffFactory())
    assert {a.status for a in done} == {"granted"}
    assert AuditEntry.objects.filter(action="badge.approved").count() == 3


def test_bulk_revoke_is_all_or_nothing_when_the_reason_is_missing():
    badge = make_badge()
    awards = [make_award(badge) for _ in range(3)]
    with pytest.raises(ReasonRequired):
        awards_revoke(awards=awards, actor=StaffFactory(), reason=" ")
    assert {a.status for a in Award.objects.all()} == {"granted"}


@pytest.mark.parametrize("who", ["creator", "viewer", "inactive staff", "anonymous"])
def test_only_active_staff_moderate(who):
    from django.contrib.auth.models import AnonymousUser

    badge = make_badge(needs_review=True)
    pending, granted = make_award(badge, status=Award.Status.PENDING), make_award(badge)
    actor = {
        "creator": badge.shop.owner,  # even the badge's own creator
        "viewer": UserFactory(),
        "inactive staff": StaffFactory(is_active=False),
        "anonymous": AnonymousUser(),
    }[who]
    with pytest.raises(ModerationNotAllowed) as raised:
        award_approve(award=pending, actor=actor)
    assert (raised.value.status, raised.value.code) == (403, "permission_denied")
    with pytest.raises(ModerationNotAllowed):
        award_revoke(award=granted, actor=actor, reason="mine")
    with pytest.raises(ModerationNotAllowed):
        awards_revoke(awards=[granted], actor=actor, reason="mine")
    assert _state(pending, granted) == [("pending", "", None), ("granted", "", None)]
    assert not AuditEntry.objects.exists()


def test_a_perk_a_reservation_holds_is_not_called_kept_and_its_release_withdraws_it_with_an_audit_entry():
    """A revoke while a buy's reservation (not paid yet) holds the award's perk: the event
    and the audit entry say it is held by that order, not kept; when the reservation is
    released, the release withdraws the perk and writes its own ``perk.withdrawn`` entry
    (no actor: the system), naming the award and the order released."""
    from django.db import transaction

    from apps.orders.models import Order
    from apps.orders.services import order_release, order_reserve
    from tests.factories import make_buyer, make_sku

    from .perk_helpers import grant_perk
    from .perk_helpers import make_badge as perk_badge

    sku = make_sku(price="10.00", stock=5)
    viewer = make_buyer()
    award, perk = grant_perk(perk_badge(sku.shop), viewer)
    order = order_reserve(buyer=viewer, lines=[(sku.code, 1)], idempotency_key="held-1", shop_slug=sku.shop.slug)
    assert order.status == Order.Status.RESERVED and f"perk:{perk.pk}" in order.redemptions
    staff = StaffFactory()

    with captured_events() as events:
        award_revoke(award=award, actor=staff, reason="Rule misfired", now=NOW)
    ((_, payload, _),) = events.of("badge.revoked")
    assert (payload["withdrawn"], payload["kept"], payload["held"]) == ([], [], [perk.pk])
    entry = AuditEntry.objects.get(action="badge.revoked")
    assert entry.details["used_perks_kept"] == []
    assert entry.details["perks_held_by_reservation"] == [{"perk": perk.pk, "kind": "percent_off", "order": order.pk}]
    assert Perk.objects.get(pk=perk.pk).withdrawn_at is None  # the reservation still has it

    with captured_events() as events:
        assert order_release(order_id=order.pk, to_status=Order.Status.DECLINED)
    perk.refresh_from_db()
    assert perk.used_at is None and perk.withdrawn_at is not None
    assert [e[0] for e in events.of("perk.withdrawn", "perk.returned")] == ["perk.withdrawn"]
    withdrawn = AuditEntry.objects.get(action="perk.withdrawn")
    assert (withdrawn.actor, withdrawn.actor_label, withdrawn.object_type, withdrawn.object_id) == (
        None, "", "loyalty.perk", str(perk.pk)
    )  # fmt: skip
    assert withdrawn.shop_id == sku.shop_id
    assert withdrawn.details["award"] == award.pk and withdrawn.details["order_released"] == order.pk
    assert withdrawn.details["kind"] == "percent_off"
    # A second release changes nothing, and writes nothing more.
    with transaction.atomic():
        assert not order_release(order_id=order.pk, to_status=Order.Status.EXPIRED)
    assert AuditEntry.objects.filter(action="perk.withdrawn").count() == 1


def test_a_released_reservation_of_a_perk_whose_award_stands_returns_it_without_an_audit_entry():
    from apps.orders.models import Order
    from apps.orders.services import order_release, order_reserve
    from tests.factories import make_buyer, make_sku

    from .perk_helpers import grant_perk
    from .perk_helpers import make_badge as perk_badge

    sku = make_sku(price="10.00", stock=5)
    viewer = make_buyer()
    _, perk = grant_perk(perk_badge(sku.shop), viewer)
    order = order_reserve(buyer=viewer, lines=[(sku.code, 1)], idempotency_key="held-2", shop_slug=sku.shop.slug)
    assert order_release(order_id=order.pk, to_status=Order.Status.EXPIRED)
    perk.refresh_from_db()
    assert (perk.used_at, perk.withdrawn_at) == (None, None)
    assert not AuditEntry.objects.filter(action="perk.withdrawn").exists()
