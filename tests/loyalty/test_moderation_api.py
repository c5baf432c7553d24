"""The moderation API (contract "Loyalty"): staff only (403 otherwise), a missing or blank
reason is 400 ``reason_required``, bad input is a 4xx with nothing written, and nothing in
the API changes or deletes audit entries."""

from __future__ import annotations

import json

import pytest

from apps.audit.models import AuditEntry
from apps.loyalty.models import Award, Perk
from tests.factories import StaffFactory, UserFactory
from tests.loyalty.test_moderation_helpers import make_award, make_badge, make_perk

pytestmark = pytest.mark.django_db

LIST = "/api/v1/moderation/awards/"


def _approve(award):
    return f"{LIST}{award.pk}/approve/"


def _revoke(award):
    return f"{LIST}{award.pk}/revoke/"


@pytest.fixture
def staff_client(api_client):
    api_client.force_authenticate(StaffFactory())
    return api_client


def test_staff_list_the_queue_by_status(staff_client):
    badge = make_badge(needs_review=True)
    pending = make_award(badge, status=Award.Status.PENDING)
    make_award(badge)
    revoked = make_award(badge, status=Award.Status.REVOKED)
    Award.objects.filter(pk=revoked.pk).update(reason="Bot account")

    body = staff_client.get(LIST).json()  # default: pending, the queue
    assert body == [
        {
            "id": pending.pk,
            "badge": {"id": badge.pk, "name": badge.name, "icon": badge.icon},
            "user": {"id": pending.user_id, "email": pending.user.email},
            "status": "pending",
            "awarded_at": "2026-03-06T20:00:00Z",
            "reason": None,
        }
    ]
    assert [a["id"] for a in staff_client.get(LIST, {"status": "revoked"}).json()] == [revoked.pk]
    assert staff_client.get(LIST, {"status": "revoked"}).json()[0]["reason"] == "Bot account"
    assert len(staff_client.get(LIST, {"status": "granted"}).json()) == 1
    assert staff_client.get(LIST, {"status": "granted", "badge": badge.pk + 1}).json() == []


@pytest.mark.parametrize("query", [{"status": "all"}, {"status": ""}, {"stream": "x"}, {"badge": "-1"}])
def test_a_bad_query_is_a_400(staff_client, query):
    response = staff_client.get(LIST, query)
    assert response.status_code == 400 and response.json()["code"] == "invalid_query"


def test_approve_and_revoke(staff_client):
    badge = make_badge(needs_review=True)
    award = make_award(badge, status=Award.Status.PENDING)
    response = staff_client.post(_approve(award), format="json")
    assert response.status_code == 200 and response.json()["status"] == "granted"
    again = staff_client.post(_approve(award), format="json")
    assert again.status_code == 409 and again.json()["code"] == "award_not_pending"

    perk = Perk.objects.get(award=award)  # granted with the badge (award_grant)
    response = staff_client.post(_revoke(award), {"reason": "Wrongly awarded"}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["reason"]) == ("revoked", "Wrongly awarded")
    assert Perk.objects.get(pk=perk.pk).withdrawn_at is not None
    assert AuditEntry.objects.filter(action="badge.revoked", object_id=str(award.pk)).count() == 1
    # A retry (a lost answer) changes nothing and answers the same award.
    retry = staff_client.post(_revoke(award), {"reason": "Wrongly awarded"}, format="json")
    assert retry.status_code == 200 and retry.json() == response.json()
    assert AuditEntry.objects.filter(action="badge.revoked").count() == 1


@pytest.mark.parametrize(
    "body, code",
    [
        ({}, "reason_required"),
        ({"reason": ""}, "reason_required"),
        ({"reason": "   "}, "reason_required"),
        ({"reason": None}, "reason_required"),  # null: no reason given
        ({"reason": 5}, "invalid"),
        ({"reason": "x" * 501}, "invalid"),
        ({"reason": "bidi \u202e text"}, "invalid"),
        (["reason"], "invalid"),
    ],
)
def test_revoke_without_a_usable_reason_is_a_400_and_writes_nothing(staff_client, body, code):
    award = make_award()
    perk = make_perk(award)
    response = staff_client.post(_revoke(award), body, format="json")
    assert response.status_code == 400 and response.json()["code"] == code
    assert Award.objects.get(pk=award.pk).status == "granted"
    assert Perk.objects.get(pk=perk.pk).withdrawn_at is None
    assert not AuditEntry.objects.exists()


def test_an_unknown_award_is_a_404(staff_client):
    for url in (f"{LIST}999999/approve/", f"{LIST}999999/revoke/", f"{LIST}{2**63}/approve/"):
        response = staff_client.post(url, {"reason": "x"}, format="json")
        assert response.status_code == 404 and response.json()["code"] in ("award_not_found", "not_found")


@pytest.mark.parametrize("who", ["creator", "viewer"])
def test_creators_and_viewers_get_403_and_nothing_changes(api_client, who):
    badge = make_badge(needs_review=True)
    pending, granted = make_award(badge, status=Award.Status.PENDING), make_award(badge)
    api_client.force_authenticate(badge.shop.owner if who == "creator" else UserFactory())
    for response in (
        api_client.get(LIST),
        api_client.post(_approve(pending), format="json"),
        api_client.post(_revoke(granted), {"reason": "I am the creator"}, format="json"),
        api_client.post(_revoke(granted), {}, format="json"),  # 403 before the body is judged
    ):
        assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert list(Award.objects.order_by("pk").values_list("status", flat=True)) == ["pending", "granted"]
    assert not AuditEntry.objects.exists()


def test_anonymous_is_refused(api_client):
    award = make_award()
    assert api_client.get(LIST).status_code in (401, 403)
    assert api_client.post(_revoke(award), {"reason": "x"}, format="json").status_code in (401, 403)
    assert Award.objects.get(pk=award.pk).status == "granted"


def test_no_api_changes_or_deletes_audit_entries(staff_client):
    """The audit log has no API at all; the moderation endpoints take no PUT, PATCH or
    DELETE; and the schema names no audit path."""
    award = make_award()
    staff_client.post(_revoke(award), {"reason": "Misfire"}, format="json")
    entry = AuditEntry.objects.get(action="badge.revoked")
    for url in (_revoke(award), _approve(award), LIST):
        for method in ("put", "patch", "delete"):
            assert getattr(staff_client, method)(url, {"reason": "edited"}, format="json").status_code == 405
    schema = staff_client.get("/api/v1/schema/?format=json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert "/api/v1/moderation/awards/{id}/revoke/" in paths
    assert [p for p in paths if "audit" in p] == []
    fresh = AuditEntry.objects.get(pk=entry.pk)
    assert (fresh.reason, fresh.action, fresh.details) == ("Misfire", "badge.revoked", entry.details)
