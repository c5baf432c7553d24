"""Roles given or taken in the admin's user form go through the same service as
``grant_role`` (apps/accounts/services.py): ticking "Is creator" gives the user a shop they
can log in to manage, and the change is an event like any other grant."""

import pytest

from apps.accounts.models import Shop, User
from tests.factories import PASSWORD, CreatorFactory, UserFactory
from tests.helpers import events_since, last_event_id, page_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    client.force_login(User.objects.create_superuser("root@example.test", PASSWORD))
    return client


def post_user_form(client, user, **changes):
    url = f"/admin/accounts/user/{user.pk}/change/"
    data = page_form(client, url)
    # page_form reads a multiple select as a single one; nothing is selected in these.
    data.pop("groups", None), data.pop("user_permissions", None)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)  # an unticked checkbox is not posted
        else:
            data[key] = value
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    return response


def test_ticking_is_creator_gives_a_shop_and_the_admin(superuser_client, client):
    user = UserFactory(display_name="Maker")
    mark = last_event_id()
    post_user_form(superuser_client, user, is_creator="on")

    user.refresh_from_db()
    assert user.is_creator
    assert Shop.objects.filter(owner=user).count() == 1
    granted = events_since(mark, "role.granted")
    assert [e.payload for e in granted] == [{"user": user.pk, "role": "creator"}]
    # ...and the new creator gets into the admin with their own shop.
    superuser_client.logout()
    client.post("/admin/login/", {"username": user.email, "password": PASSWORD, "next": "/admin/"})
    listing = client.get("/admin/accounts/shop/")
    assert listing.status_code == 200 and f"/admin/accounts/shop/{user.shop.pk}/change/".encode() in listing.content


def test_unticking_is_creator_revokes_through_the_service(superuser_client):
    creator = CreatorFactory()
    mark = last_event_id()
    post_user_form(superuser_client, creator, is_creator=None)

    creator.refresh_from_db()
    assert not creator.is_creator
    assert Shop.objects.filter(owner=creator).exists()  # orders refer to it
    assert [e.payload for e in events_since(mark, "role.revoked")] == [{"user": creator.pk, "role": "creator"}]


def test_is_staff_is_granted_and_revoked_through_the_service(superuser_client):
    user = UserFactory()
    mark = last_event_id()
    post_user_form(superuser_client, user, is_staff="on")
    user.refresh_from_db()
    assert user.is_staff
    assert [e.payload for e in events_since(mark, "role.granted")] == [{"user": user.pk, "role": "staff"}]

    mark = last_event_id()
    post_user_form(superuser_client, user, is_staff=None)
    user.refresh_from_db()
    assert not user.is_staff
    assert [e.payload for e in events_since(mark, "role.revoked")] == [{"user": user.pk, "role": "staff"}]


def test_saving_without_a_role_change_emits_nothing(superuser_client):
    creator = CreatorFactory()
    mark = last_event_id()
    post_user_form(superuser_client, creator, display_name="Renamed")
    creator.refresh_from_db()
    assert creator.display_name == "Renamed" and creator.is_creator
    assert events_since(mark, "role.granted", "role.revoked") == []


def test_a_creator_left_without_a_shop_gets_one_when_saved(superuser_client):
    """Users ticked as creators before this fix have no shop; saving them repairs it."""
    stranded = UserFactory(is_creator=True)
    post_user_form(superuser_client, stranded)
    assert Shop.objects.filter(owner=stranded).count() == 1
