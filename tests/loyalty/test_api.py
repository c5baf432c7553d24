"""``GET /api/v1/me/badges/``: the signed-in viewer's granted awards only."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.loyalty.awards import award_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_my_badges_lists_granted_awards_only(api_client, shop, make_badge):
    viewer, other = UserFactory(), UserFactory()
    early = make_badge("repeat", count=1, name="Early", icon="🚀")
    review = make_badge("repeat", count=2, name="Superfan", icon="💜", needs_review=True)
    granted, _ = award_create(badge=early, user=viewer, scope="", stream_id=None, now=timezone.now())
    award_create(badge=review, user=viewer, scope="", stream_id=None, now=timezone.now())  # pending
    award_create(badge=early, user=other, scope="", stream_id=None, now=timezone.now())
    api_client.force_authenticate(viewer)
    response = api_client.get("/api/v1/me/badges/")
    assert response.status_code == 200
    body = response.json()
    assert body == [
        {
            "id": granted.pk,
            "badge": {"id": early.pk, "name": "Early", "icon": "🚀"},
            "awarded_at": granted.awarded_at.isoformat().replace("+00:00", "Z"),
        }
    ]


def test_my_badges_needs_a_signed_in_viewer(api_client):
    response = api_client.get("/api/v1/me/badges/")
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"
