"""The signing-key admin: staff may look, nobody may change, and the private key never shows."""

from __future__ import annotations

import pytest

from creatorcommerce.signing.services import signing_key_current, signing_key_rotate
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_staff_see_keys_but_never_the_private_jwk(client):
    key = signing_key_current()
    new, _retired = signing_key_rotate()
    client.force_login(StaffFactory())

    changelist = client.get("/admin/signing/signingkey/")
    change = client.get(f"/admin/signing/signingkey/{key.pk}/change/")

    assert changelist.status_code == 200 and change.status_code == 200
    assert key.kid in changelist.content.decode() and new.kid in changelist.content.decode()
    assert key.public_jwk["x"] in change.content.decode()
    for page in (changelist, change):
        assert key.private_jwk["d"] not in page.content.decode()
        assert new.private_jwk["d"] not in page.content.decode()


def test_keys_cannot_be_added_changed_or_deleted_in_the_admin(client):
    key = signing_key_current()
    client.force_login(StaffFactory(is_superuser=True))

    assert client.get("/admin/signing/signingkey/add/").status_code == 403
    assert client.get(f"/admin/signing/signingkey/{key.pk}/delete/").status_code == 403
    client.post(f"/admin/signing/signingkey/{key.pk}/change/", {"kid": "hijacked", "node": "x"})
    key.refresh_from_db()
    assert key.kid != "hijacked"


def test_non_staff_cannot_see_keys(client):
    signing_key_current()
    client.force_login(UserFactory())

    assert client.get("/admin/signing/signingkey/").status_code == 302
