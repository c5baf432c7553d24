"""The award queue in the admin (docs/loyalty.md, "Staff moderation"): staff approve and
revoke (with a confirm page asking for the reason), in bulk, filtered by drop; creators see
their shop's awards read-only and cannot act; the audit log's admin is read-only, staff
read every entry and a creator their own shop's."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.loyalty.models import Award, Perk
from apps.loyalty.moderation import award_revoke
from apps.streams.models import Stream
from tests.factories import StaffFactory
from tests.loyalty.test_moderation_helpers import make_award, make_badge, make_perk

pytestmark = pytest.mark.django_db

QUEUE = "/admin/loyalty/award/"


def _act(client, action, awards, url=QUEUE, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [a.pk for a in awards], "index": 0, **extra}
    return client.post(url, data, follow=True)


def test_staff_revoke_a_drop_in_bulk_with_a_reason_on_a_confirm_page(client):
    badge = make_badge()
    shop = badge.shop
    drop = Stream.objects.create(shop=shop, title="Friday night drop", starts_at=timezone.now())
    in_drop = [make_award(badge, stream=drop, scope=f"stream:{drop.pk}") for _ in range(3)]
    other = make_award(badge)
    unused = make_perk(in_drop[0])
    used = make_perk(in_drop[1], used=True)
    staff = StaffFactory()
    client.force_login(staff)

    listing = client.get(QUEUE, {"stream__id__exact": drop.pk}).content.decode()
    assert listing.count('class="action-select"') == 3 and "Revoke selected awards" in listing

    # The action shows the confirm page first: nothing is revoked yet.
    confirm = _act(client, "revoke_selected", in_drop, url=f"{QUEUE}?stream__id__exact={drop.pk}")
    page = confirm.content.decode()
    assert confirm.status_code == 200 and "Revoke 3 award(s)?" in page and 'name="reason"' in page
    assert {a.status for a in Award.objects.filter(pk__in=[a.pk for a in in_drop])} == {"granted"}

    # Confirmed without a reason: the page again, with the error; still nothing revoked.
    refused = _act(client, "revoke_selected", in_drop, confirm="yes", reason="  ")
    assert "This field is required" in refused.content.decode()
    assert not Award.objects.filter(status="revoked").exists()

    done = _act(client, "revoke_selected", in_drop, confirm="yes", reason="First-buyers rule misfired in this drop")
    assert "3 award(s) revoked." in done.content.decode()
    assert set(Award.objects.filter(status="revoked").values_list("pk", flat=True)) == {a.pk for a in in_drop}
    assert Award.objects.get(pk=other.pk).status == "granted"
    assert Perk.objects.get(pk=unused.pk).withdrawn_at is not None
    assert Perk.objects.get(pk=used.pk).withdrawn_at is None
    entries = AuditEntry.objects.filter(action="badge.revoked")
    assert entries.count() == 3
    assert {(e.actor_id, e.reason) for e in entries} == {(staff.pk, "First-buyers rule misfired in this drop")}


def test_staff_approve_selected_all_or_nothing(client):
    badge = make_badge(needs_review=True)
    pending = [make_award(badge, status=Award.Status.PENDING) for _ in range(2)]
    revoked = make_award(badge, status=Award.Status.REVOKED)
    client.force_login(StaffFactory())

    refused = _act(client, "approve_selected", [*pending, revoked])
    assert "Nothing was approved" in refused.content.decode()
    assert {a.status for a in Award.objects.filter(pk__in=[p.pk for p in pending])} == {"pending"}

    done = _act(client, "approve_selected", pending)
    assert "2 award(s) approved." in done.content.decode()
    assert {a.status for a in Award.objects.filter(pk__in=[p.pk for p in pending])} == {"granted"}
    assert AuditEntry.objects.filter(action="badge.approved").count() == 2


def test_a_creator_sees_their_shops_awards_read_only_and_cannot_act(client):
    badge = make_badge(needs_review=True, name="Mine")
    mine = make_award(badge, status=Award.Status.PENDING)
    theirs = make_award(make_badge(name="Someone else's badge", needs_review=True), status=Award.Status.PENDING)
    client.force_login(badge.shop.owner)

    listing = client.get(QUEUE)
    page = listing.content.decode()
    assert listing.status_code == 200 and mine.user.email in page and theirs.user.email not in page
    assert "Someone else" not in page  # not even in the badge filter
    assert "Approve selected" not in page and "Revoke selected" not in page
    assert client.get(f"{QUEUE}{mine.pk}/change/").status_code == 200
    assert client.get(f"{QUEUE}{theirs.pk}/change/").status_code in (302, 404)

    # Posting the actions anyway changes nothing.
    _act(client, "approve_selected", [mine])
    _act(client, "revoke_selected", [mine], confirm="yes", reason="creator tries")
    assert client.post(f"{QUEUE}{mine.pk}/change/", {"status": "granted"}).status_code == 403
    assert client.post(f"{QUEUE}{mine.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Award.objects.get(pk=mine.pk).status == "pending"
    assert not AuditEntry.objects.exists()


def test_the_audit_log_is_read_only_and_scoped_to_the_creators_shop(client):
    badge = make_badge()
    mine = make_award(badge)
    theirs = make_award(make_badge(name="Other shop's"))
    staff = StaffFactory()
    award_revoke(award=mine, actor=staff, reason="Mine: misfire")
    award_revoke(award=theirs, actor=staff, reason="Theirs: misfire")
    my_entry = AuditEntry.objects.get(object_id=str(mine.pk), action="badge.revoked")
    their_entry = AuditEntry.objects.get(object_id=str(theirs.pk), action="badge.revoked")

    client.force_login(badge.shop.owner)
    listing = client.get("/admin/audit/auditentry/").content.decode()
    assert "Mine: misfire" in listing and "Theirs: misfire" not in listing
    detail = client.get(f"/admin/audit/auditentry/{my_entry.pk}/change/")
    assert detail.status_code == 200 and staff.email in detail.content.decode()
    # The actor is text, not a link to the user's admin page (a 403 for a creator).
    assert "/admin/accounts/user/" not in detail.content.decode()
    assert client.get(f"/admin/audit/auditentry/{their_entry.pk}/change/").status_code in (302, 404)
    # The award's page links to its entries.
    award_page = client.get(f"{QUEUE}{mine.pk}/change/").content.decode()
    assert f"object_type=loyalty.award&amp;q={mine.pk}" in award_page
    assert "/admin/accounts/user/" not in award_page  # who decided: text
    about = client.get("/admin/audit/auditentry/", {"object_type": "loyalty.award", "q": mine.pk})
    assert about.status_code == 200 and "Mine: misfire" in about.content.decode()

    for user in (badge.shop.owner, staff):
        client.force_login(user)
        assert client.get("/admin/audit/auditentry/add/").status_code == 403
        edit = client.post(f"/admin/audit/auditentry/{my_entry.pk}/change/", {"reason": "edited", "action": "x"})
        assert edit.status_code == 403
        gone = client.post(f"/admin/audit/auditentry/{my_entry.pk}/delete/", {"post": "yes"})
        assert gone.status_code == 403
        bulk = client.post(
            "/admin/audit/auditentry/",
            {"action": "delete_selected", ACTION_CHECKBOX_NAME: [my_entry.pk], "post": "yes", "index": 0},
        )
        assert bulk.status_code in (200, 302)
    staff_listing = client.get("/admin/audit/auditentry/").content.decode()
    assert "Mine: misfire" in staff_listing and "Theirs: misfire" in staff_listing
    fresh = AuditEntry.objects.get(pk=my_entry.pk)
    assert (fresh.reason, fresh.action) == ("Mine: misfire", "badge.revoked")
    assert AuditEntry.objects.count() == 2


def test_the_confirm_page_and_the_award_page_say_a_perk_is_held_by_an_order_not_paid_yet(client):
    from apps.orders.services import order_reserve
    from tests.factories import make_buyer, make_sku

    from .perk_helpers import grant_perk
    from .perk_helpers import make_badge as perk_badge

    sku = make_sku(price="10.00", stock=5)
    viewer = make_buyer()
    award, perk = grant_perk(perk_badge(sku.shop), viewer)
    order = order_reserve(buyer=viewer, lines=[(sku.code, 1)], idempotency_key="held-a", shop_slug=sku.shop.slug)
    client.force_login(StaffFactory())

    page = _act(client, "revoke_selected", [award]).content.decode()
    assert "withdrawn (0 now)" in page
    assert "<strong>1</strong> held by an order not paid yet: withdrawn if that order is released" in page
    detail = client.get(f"{QUEUE}{award.pk}/change/").content.decode()
    assert f"held by pending order {order.pk}" in detail
    _act(client, "revoke_selected", [award], confirm="yes", reason="Rule misfired")
    assert Perk.objects.get(pk=perk.pk).withdrawn_at is None  # the reservation still has it
