"""Logging in at /admin/login/ with the admin's own form, as a person would (no force_login):
creators with a shop get in, like staff; viewers and former creators do not."""

import pytest

from apps.accounts.services import user_revoke_role
from tests.factories import PASSWORD, CreatorFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def admin_login(client, email, password=PASSWORD):
    client.get("/admin/login/")  # the CSRF cookie, as a browser gets it
    return client.post("/admin/login/?next=/admin/", {"username": email, "password": password, "next": "/admin/"})


def test_creator_logs_in_at_admin_login_and_sees_their_shop(client):
    creator = CreatorFactory()
    response = admin_login(client, creator.email)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == "/admin/"
    index = client.get("/admin/")
    assert index.status_code == 200
    assert b"Products" in index.content
    assert client.get("/admin/accounts/shop/").content.count(creator.shop.name.encode()) >= 1


def test_staff_still_log_in_at_admin_login(client):
    staff = StaffFactory()
    assert admin_login(client, staff.email)["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("who", ["viewer", "former_creator", "inactive_creator"])
def test_admin_login_refuses_who_has_no_admin(client, who):
    if who == "viewer":
        user = UserFactory()
    else:
        user = CreatorFactory()
        if who == "former_creator":
            user_revoke_role(email=user.email, role="creator")
        else:
            user.is_active = False
            user.save(update_fields=["is_active"])
    response = admin_login(client, user.email)
    assert response.status_code == 200  # the form again, with its error
    assert b"errornote" in response.content
    assert client.get("/admin/").status_code == 302


def test_admin_login_with_a_wrong_password_is_refused(client):
    creator = CreatorFactory()
    response = admin_login(client, creator.email, "wrong-password-1")
    assert response.status_code == 200 and b"errornote" in response.content
