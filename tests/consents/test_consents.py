"""Consent, explicit and reversible (docs/geofences.md, "Consent"): the API, the audit
entry of every change, and revocation erasing the user's positions and presences (only
theirs) in the same transaction."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEntry
from apps.consents.models import Consent
from apps.consents.services import consent_set
from apps.geofences.models import Position, Presence
from creatorcommerce.spine.models import OutboxEvent
from tests.factories import UserFactory
from tests.geofences.conftest import NOON, offset
from tests.helpers import captured_events

pytestmark = pytest.mark.django_db


def _ping(user, north=0.0):
    from apps.geofences.services import geo_ping

    lat, lon = offset(north)
    return geo_ping(user=user, lat=lat, lon=lon, accuracy_m=5, at=NOON, now=NOON)


def test_list_every_kind_never_set_is_null(api_client):
    user = UserFactory()
    api_client.force_login(user)
    response = api_client.get("/api/v1/me/consents/")
    assert response.status_code == 200
    assert response.json() == [
        {"kind": "location", "granted": False, "changed_at": None},
        {"kind": "calendar", "granted": False, "changed_at": None},
    ]


def test_grant_and_revoke_through_the_api_audited(api_client):
    user = UserFactory()
    api_client.force_login(user)
    response = api_client.put("/api/v1/me/consents/location/", {"granted": True}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["granted"] is True and body["changed_at"].endswith("Z") and "deleted" not in body
    listed = api_client.get("/api/v1/me/consents/").json()
    assert listed[0] == {"kind": "location", "granted": True, "changed_at": body["changed_at"]}
    response = api_client.put("/api/v1/me/consents/location/", {"granted": False}, format="json")
    assert response.json()["granted"] is False and response.json()["deleted"] == 0
    entries = list(AuditEntry.objects.filter(object_type="consents.consent").order_by("id"))
    assert [(e.action, e.actor_id, e.shop_id, e.details["kind"]) for e in entries] == [
        ("consent.granted", user.pk, None, "location"),
        ("consent.revoked", user.pk, None, "location"),
    ]


def test_setting_the_same_value_again_changes_nothing():
    user = UserFactory()
    consent_set(user=user, kind="calendar", granted=True)
    with captured_events() as events:
        outcome = consent_set(user=user, kind="calendar", granted=True)
    assert outcome.changed is False and events == []
    assert AuditEntry.objects.filter(action="consent.granted").count() == 1


@pytest.mark.parametrize(
    ("url", "body", "status", "code"),
    [
        ("/api/v1/me/consents/camera/", {"granted": True}, 404, "consent_kind_not_found"),
        ("/api/v1/me/consents/location/", {"granted": "yes"}, 400, "invalid"),
        ("/api/v1/me/consents/location/", {"granted": 1}, 400, "invalid"),
        ("/api/v1/me/consents/location/", {}, 400, "invalid"),
        ("/api/v1/me/consents/location/", [], 400, "invalid"),
    ],
)
def test_bad_input_is_4xx_with_a_code_and_writes_nothing(api_client, url, body, status, code):
    api_client.force_login(UserFactory())
    response = api_client.put(url, body, format="json")
    assert response.status_code == status
    assert response.json()["code"] == code
    assert not Consent.objects.exists() and not AuditEntry.objects.exists()


def test_anonymous_is_refused(api_client):
    assert api_client.get("/api/v1/me/consents/").status_code in (401, 403)
    assert api_client.put("/api/v1/me/consents/location/", {"granted": True}, format="json").status_code in (401, 403)


def test_revoke_erases_that_viewer_only_and_counts(api_client, venue, viewer, other_viewer):
    _ping(viewer)
    _ping(other_viewer)
    assert Presence.objects.count() == 2 and Position.objects.count() == 2
    api_client.force_login(viewer)
    response = api_client.put("/api/v1/me/consents/location/", {"granted": False}, format="json")
    assert response.status_code == 200
    assert response.json()["deleted"] == 2  # one presence, one position
    assert not Presence.objects.filter(user=viewer).exists() and not Position.objects.filter(user=viewer).exists()
    assert Presence.objects.filter(user=other_viewer).count() == 1
    assert Position.objects.filter(user=other_viewer).count() == 1
    entry = AuditEntry.objects.filter(action="consent.revoked").get()
    assert entry.actor_id == viewer.pk and entry.details == {"kind": "location", "deleted": 2}
    # Their recorded presence events keep venue and time but no longer say who; others' do.
    entered = [e.payload for e in OutboxEvent.objects.filter(type="venue.entered").order_by("pk")]
    assert [(p["venue"], p["user"]) for p in entered] == [(venue.pk, None), (venue.pk, other_viewer.pk)]
    # And the next ping is refused, nothing stored.
    response = api_client.post("/api/v1/geo/pings/", {"lat": 52.52, "lon": 13.405, "accuracy_m": 5}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "consent_required"
    assert not Position.objects.filter(user=viewer).exists()


def test_consent_events_carry_no_position(venue, viewer):
    _ping(viewer)
    with captured_events() as events:
        consent_set(user=viewer, kind="location", granted=False, now=NOON)
    assert events == [
        (
            "consent.changed",
            {
                "user": viewer.pk,
                "kind": "location",
                "granted": False,
                "changed_at": "2026-06-01T10:00:00Z",
                "deleted": 2,
            },
            [],
        )
    ]
