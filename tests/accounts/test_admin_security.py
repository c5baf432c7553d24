"""Staff who are not superusers moderate users, but cannot take over an account that has
more power than a viewer's: a superuser's or another staff member's password, e-mail and
active flag are out of their reach (they may still look at them)."""

import pytest

from apps.accounts.models import User
from tests.factories import PASSWORD, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Another-Horse-77"


def password_url(user):
    return f"/admin/accounts/user/{user.pk}/password/"


def change_url(user):
    return f"/admin/accounts/user/{user.pk}/change/"


def password_post(user):
    return {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}


def change_post(user, **changes):
    data = {
        "email": user.email,
        "display_name": user.display_name,
        "time_zone": user.time_zone,
        "is_active": "on",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root@example.test", PASSWORD)


@pytest.fixture
def moderator(client):
    """A staff member who is not a superuser, logged in."""
    user = StaffFactory()
    client.force_login(user)
    return user


@pytest.mark.parametrize("target", ["superuser", "other_staff"])
def test_staff_cannot_set_the_password_of_a_superuser_or_other_staff(client, moderator, superuser, target):
    victim = superuser if target == "superuser" else StaffFactory()
    assert client.get(password_url(victim)).status_code == 403

    response = client.post(password_url(victim), password_post(victim))

    assert response.status_code == 403
    victim.refresh_from_db()
    assert victim.check_password(PASSWORD) and not victim.check_password(NEW_PASSWORD)


@pytest.mark.parametrize("target", ["superuser", "other_staff"])
def test_staff_cannot_change_or_deactivate_a_superuser_or_other_staff(client, moderator, superuser, target):
    victim = superuser if target == "superuser" else StaffFactory()
    before = User.objects.filter(pk=victim.pk).values().get()

    for changes in ({"email": "mine@example.test"}, {"is_active": None}):
        response = client.post(change_url(victim), change_post(victim, **changes))
        assert response.status_code == 403

    assert User.objects.filter(pk=victim.pk).values().get() == before


def test_staff_can_still_view_a_superuser(client, moderator, superuser):
    page = client.get(change_url(superuser))
    assert page.status_code == 200
    # A view page: nothing to edit (the password hash is a read-only field of the form anyway).
    assert set(page.context["adminform"].form.fields) <= {"password"}
    assert superuser.email.encode() in page.content
    assert client.get("/admin/accounts/user/").status_code == 200


def test_staff_still_moderate_viewers(client, moderator):
    viewer = UserFactory()
    response = client.post(change_url(viewer), change_post(viewer, is_active=None))
    assert response.status_code == 302
    viewer.refresh_from_db()
    assert not viewer.is_active
    assert client.post(password_url(viewer), password_post(viewer)).status_code == 302
    viewer.refresh_from_db()
    assert viewer.check_password(NEW_PASSWORD)


def test_staff_can_change_their_own_password(client, moderator):
    assert client.post(password_url(moderator), password_post(moderator)).status_code == 302
    moderator.refresh_from_db()
    assert moderator.check_password(NEW_PASSWORD)


def test_superuser_can_set_a_staff_members_password(client, superuser):
    staff = StaffFactory()
    client.force_login(superuser)
    assert client.post(password_url(staff), password_post(staff)).status_code == 302
    staff.refresh_from_db()
    assert staff.check_password(NEW_PASSWORD)
