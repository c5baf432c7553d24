"""The exact events the accounts' services send (docs/events.md): type, payload and groups,
each checked against its declared schema by ``captured_events``."""

from __future__ import annotations

import pytest

from apps.accounts.services import user_grant_role, user_revoke_role
from tests.factories import UserFactory
from tests.helpers import captured_events

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["creator", "staff"])
def test_granting_and_revoking_a_role_sends_one_event_each_and_repeats_send_none(role):
    user = UserFactory()
    with captured_events() as events:
        user_grant_role(email=user.email, role=role)
        user_grant_role(email=user.email, role=role)
        user_revoke_role(email=user.email, role=role)
        user_revoke_role(email=user.email, role=role)
    assert events == [
        ("role.granted", {"user": user.pk, "role": role}, []),
        ("role.revoked", {"user": user.pk, "role": role}, []),
    ]
