"""Each user has an IANA time zone; pages and the admin show and read times in it, so a
creator schedules a drop in their own time (the API keeps answering in UTC)."""

from datetime import UTC, datetime

import pytest
from django.conf import settings

from apps.accounts.models import User
from apps.accounts.services import user_set_time_zone
from apps.streams.models import Stream
from creatorcommerce.errors import DomainError
from tests.factories import PASSWORD, CreatorFactory, UserFactory
from tests.helpers import page_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def new_yorker(client):
    creator = CreatorFactory()
    user_set_time_zone(user=creator, time_zone="America/New_York")
    client.force_login(creator)
    return creator


def test_a_creator_schedules_a_drop_in_their_own_time_zone(client, new_yorker):
    data = page_form(client, "/admin/streams/stream/add/")
    data.update({"title": "Sunday night drop", "starts_at_0": "2026-12-06", "starts_at_1": "20:00:00"})
    response = client.post("/admin/streams/stream/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]

    stream = Stream.objects.get(title="Sunday night drop")
    assert stream.starts_at == datetime(2026, 12, 7, 1, 0, tzinfo=UTC)  # 20:00 in New York is 01:00 UTC
    listing = client.get("/admin/streams/stream/").content.decode()
    assert "Dec. 6, 2026, 8 p.m." in listing
    assert "Times in <strong>America/New_York</strong>" in listing
    change = page_form(client, f"/admin/streams/stream/{stream.pk}/change/")
    assert (change["starts_at_0"], change["starts_at_1"]) == ("2026-12-06", "20:00:00")


def test_the_api_keeps_answering_in_utc(client, new_yorker):
    stream = Stream.objects.create(
        shop=new_yorker.shop, title="Drop", starts_at=datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    )
    body = client.get(f"/api/v1/streams/{stream.pk}/").json()
    assert body["starts_at"] == "2026-12-07T01:00:00Z"


def test_anonymous_and_new_users_get_the_default_zone(client):
    assert UserFactory().time_zone == settings.TIME_ZONE
    creator = CreatorFactory()
    client.force_login(creator)
    assert "Times in <strong>UTC</strong>" in client.get("/admin/").content.decode()


def test_the_time_zone_page_changes_the_zone(client):
    user = UserFactory()
    client.force_login(user)
    page = client.get("/accounts/time-zone/")
    assert page.status_code == 200 and b'<option value="Asia/Tokyo">' in page.content
    response = client.post("/accounts/time-zone/", {"time_zone": "Asia/Tokyo", "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    user.refresh_from_db()
    assert user.time_zone == "Asia/Tokyo"


@pytest.mark.parametrize("bad", ["Mars/Olympus_Mons", "", "../../etc/passwd", "America/New_York\x00"])
def test_an_unknown_zone_is_refused_and_changes_nothing(client, bad):
    user = UserFactory()
    client.force_login(user)
    response = client.post("/accounts/time-zone/", {"time_zone": bad})
    assert response.status_code == 400
    user.refresh_from_db()
    assert user.time_zone == settings.TIME_ZONE
    with pytest.raises(DomainError) as exc:
        user_set_time_zone(user=user, time_zone=bad)
    assert exc.value.code == "invalid_time_zone"


def test_the_time_zone_page_needs_a_login_and_ignores_foreign_next(client):
    assert client.get("/accounts/time-zone/").status_code == 302
    client.force_login(UserFactory())
    response = client.post("/accounts/time-zone/", {"time_zone": "Europe/Berlin", "next": "https://evil.test/"})
    assert response["Location"] == "/accounts/time-zone/"


def test_staff_set_a_users_zone_in_the_admin(client):
    client.force_login(User.objects.create_superuser("root@example.test", PASSWORD))
    user = UserFactory()
    url = f"/admin/accounts/user/{user.pk}/change/"
    data = page_form(client, url)
    data.pop("groups", None), data.pop("user_permissions", None)
    assert client.post(url, {**data, "time_zone": "Nowhere/Special"}).status_code == 200
    assert client.post(url, {**data, "time_zone": "Europe/Lisbon"}).status_code == 302
    user.refresh_from_db()
    assert user.time_zone == "Europe/Lisbon"


@pytest.mark.parametrize(
    ("sent", "kept"), [("Australia/Sydney", "Australia/Sydney"), ("Bogus/Zone", "UTC"), ("", "UTC")]
)
def test_signup_keeps_the_browsers_zone(client, sent, kept):
    response = client.post(
        "/accounts/signup/",
        {
            "email": "new@example.test",
            "password1": "Long-Enough-Pass-42",
            "password2": "Long-Enough-Pass-42",
            "time_zone": sent,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.get(email="new@example.test").time_zone == kept


def test_the_demo_creator_schedules_in_berlin_time(client):
    from creatorcommerce.demo import DEMO_CREATOR_TIME_ZONE, DEMO_PASSWORD, DEMO_USERS, seed

    seed()
    creator = User.objects.get(email=DEMO_USERS["creator"][0])
    assert creator.time_zone == DEMO_CREATOR_TIME_ZONE == "Europe/Berlin"
    client.post("/admin/login/", {"username": creator.email, "password": DEMO_PASSWORD, "next": "/admin/"})
    assert "Times in <strong>Europe/Berlin</strong>" in client.get("/admin/").content.decode()
