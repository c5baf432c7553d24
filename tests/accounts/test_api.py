"""App clients: allauth headless signup/login, X-Session-Token on /api/v1/."""

import pytest

from tests.factories import PASSWORD, CreatorFactory

pytestmark = pytest.mark.django_db


def _signup(client, email="new@example.test", password="Str0ng-pass-phrase"):
    return client.post(
        "/_allauth/app/v1/auth/signup", {"email": email, "password": password}, content_type="application/json"
    )


def test_app_client_signs_up_and_token_authenticates_me(client):
    response = _signup(client)
    assert response.status_code == 200, response.content
    token = response.json()["meta"]["session_token"]

    me = client.get("/api/v1/me/", headers={"X-Session-Token": token})
    assert me.status_code == 200
    assert me.json() == {
        "id": me.json()["id"],
        "email": "new@example.test",
        "display_name": "",
        "roles": ["viewer"],
        "time_zone": "UTC",
        "shop": None,
    }


def test_login_returns_token_and_me_shows_creator_shop(client):
    creator = CreatorFactory()
    response = client.post(
        "/_allauth/app/v1/auth/login", {"email": creator.email, "password": PASSWORD}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    token = response.json()["meta"]["session_token"]
    body = client.get("/api/v1/me/", headers={"X-Session-Token": token}).json()
    assert body["roles"] == ["viewer", "creator"]
    assert body["shop"]["name"] == creator.shop.name


def test_me_shows_the_users_time_zone(client):
    """App clients show times as the web pages do: in the zone the user chose."""
    creator = CreatorFactory()
    creator.time_zone = "Asia/Tokyo"
    creator.save(update_fields=["time_zone"])
    client.force_login(creator)
    assert client.get("/api/v1/me/").json()["time_zone"] == "Asia/Tokyo"


def test_wrong_token_is_401_json(client):
    response = client.get("/api/v1/me/", headers={"X-Session-Token": "not-a-token"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_no_credentials_is_401_json(client):
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert "X-Session-Token" in response.headers["WWW-Authenticate"]


def test_browser_session_authenticates_me(client):
    creator = CreatorFactory()
    client.force_login(creator)
    assert client.get("/api/v1/me/").json()["email"] == creator.email


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"email": 5, "password": []}',
        b'{"email": "no-at-sign", "password": "Str0ng-pass-phrase"}',
        b'{"email": "x@example.test", "password": "1"}',
    ],
)
def test_bad_signup_is_400_with_a_code_and_creates_nothing(client, body):
    from apps.accounts.models import User

    response = client.post("/_allauth/app/v1/auth/signup", body, content_type="application/json")
    assert response.status_code == 400
    data = response.json()
    # allauth's own error list for invalid fields; our JSON error for a body that is not JSON.
    assert data.get("code") == "bad_request" or all("code" in e for e in data["errors"])
    assert User.objects.count() == 0


def test_duplicate_email_signup_is_refused(client):
    assert _signup(client, email="Dup@Example.test").status_code == 200
    client.logout()
    again = _signup(client, email="dup@example.test")
    assert again.status_code == 400


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_wrong_method_is_json_405(client):
    creator = CreatorFactory()
    client.force_login(creator)
    response = client.delete("/api/v1/me/")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_schema_and_docs_render(client):
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/me/" in schema.content
    assert client.get("/api/v1/docs/").status_code == 200


def _login_token(client, user) -> str:
    response = client.post(
        "/_allauth/app/v1/auth/login", {"email": user.email, "password": PASSWORD}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()["meta"]["session_token"]


def test_a_token_whose_session_is_gone_or_expired_is_401(client):
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.core.cache import cache
    from django.utils import timezone

    creator = CreatorFactory()
    deleted, expired = _login_token(client, creator), _login_token(client, creator)
    Session.objects.filter(session_key=deleted).delete()
    Session.objects.filter(session_key=expired).update(expire_date=timezone.now() - timedelta(seconds=1))
    cache.clear()  # what a cache eviction or a restart of Redis leaves: only the database
    for token in (deleted, expired, "x" * 65, "short"):
        response = client.get("/api/v1/me/", headers={"X-Session-Token": token})
        assert response.status_code == 401 and response.json()["code"] == "invalid_token", token


def test_a_token_is_looked_up_with_one_session_read(client, monkeypatch):
    from django.contrib.sessions.backends.cached_db import SessionStore

    creator = CreatorFactory()
    token = _login_token(client, creator)
    calls = []
    for name in ("exists", "load"):
        original = getattr(SessionStore, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(SessionStore, name, counted)
    assert client.get("/api/v1/me/", headers={"X-Session-Token": token}).json()["email"] == creator.email
    assert calls == ["load"]  # allauth's own strategy asked exists() first: a second read
