"""The creator-scoped admin: creators see their own shop only; staff see everything."""

import pytest

from tests.factories import CreatorFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_creator_sees_only_own_shop(client):
    mine, theirs = CreatorFactory(), CreatorFactory()
    client.force_login(mine)
    listing = client.get("/admin/accounts/shop/")
    assert listing.status_code == 200
    assert mine.shop.name.encode() in listing.content
    assert theirs.shop.name.encode() not in listing.content
    assert client.get(f"/admin/accounts/shop/{mine.shop.pk}/change/").status_code == 200
    # Another shop's page is not reachable (the admin redirects away from objects it cannot find).
    other = client.get(f"/admin/accounts/shop/{theirs.shop.pk}/change/")
    assert other.status_code in (302, 403, 404)
    response = client.post(
        f"/admin/accounts/shop/{theirs.shop.pk}/change/", {"name": "hijacked", "slug": "x", "currency": "USD"}
    )
    theirs.shop.refresh_from_db()
    assert theirs.shop.name != "hijacked"
    assert response.status_code in (302, 403, 404)


def test_creator_cannot_see_users_or_outbox(client):
    client.force_login(CreatorFactory())
    assert client.get("/admin/accounts/user/").status_code == 403
    assert client.get("/admin/spine/outboxevent/").status_code == 403


def test_staff_sees_every_shop(client):
    a, b = CreatorFactory(), CreatorFactory()
    client.force_login(StaffFactory())
    listing = client.get("/admin/accounts/shop/")
    assert a.shop.name.encode() in listing.content and b.shop.name.encode() in listing.content
    assert client.get("/admin/accounts/user/").status_code == 200


def test_viewer_is_refused_by_the_admin(client):
    client.force_login(UserFactory())
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
