"""TRUSTED_PROXIES: who the client is behind a reverse proxy, and every per-client limit
keying on that answer (docs/operations.md, "Behind a reverse proxy")."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.test import Client, RequestFactory

from creatorcommerce.clientip import client_ip, resolve_client_ip

PROXY = "10.0.0.5"


@pytest.fixture(autouse=True)
def _fresh_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def behind_proxy(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24", "2001:db8::/32"]
    return settings


def _via(peer: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


# -- the resolver --------------------------------------------------------------------------


def test_without_trusted_proxies_the_peer_is_the_client_and_the_header_is_ignored(settings):
    settings.TRUSTED_PROXIES = []
    assert client_ip(_via("203.0.113.7", "198.51.100.1")) == "203.0.113.7"


def test_a_forged_header_from_an_untrusted_peer_is_ignored(behind_proxy):
    assert client_ip(_via("203.0.113.7", "198.51.100.1, 10.0.0.5")) == "203.0.113.7"


def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client(behind_proxy):
    # The client forged "1.1.1.1"; nginx appended the address it saw (198.51.100.9).
    assert client_ip(_via(PROXY, "1.1.1.1, 198.51.100.9")) == "198.51.100.9"
    # Two proxies: the inner one (10.0.0.7) appended the outer one's peer.
    assert client_ip(_via(PROXY, "1.1.1.1, 198.51.100.9, 10.0.0.7")) == "198.51.100.9"


def test_a_trusted_proxy_without_a_header_is_the_client(behind_proxy):
    assert client_ip(_via(PROXY)) == PROXY


def test_all_trusted_hops_give_the_leftmost(behind_proxy):
    assert client_ip(_via(PROXY, "10.0.0.8, 10.0.0.7")) == "10.0.0.8"


def test_garbage_in_the_header_stops_at_the_last_address_known(behind_proxy):
    assert client_ip(_via(PROXY, "<script>, 10.0.0.7")) == "10.0.0.7"
    assert client_ip(_via(PROXY, "nonsense")) == PROXY


def test_ports_brackets_and_ipv6(behind_proxy):
    assert resolve_client_ip("2001:db8::1", "[2a00:1450::9]:443, 2001:db8::3") == "2a00:1450::9"
    assert resolve_client_ip("[2001:db8::1]:5000", "198.51.100.9:1234") == "198.51.100.9"
    assert resolve_client_ip("::ffff:10.0.0.5", "2a00:1450::1") == "2a00:1450::1"


def test_a_bad_trusted_proxies_entry_refuses_to_start(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import creatorcommerce.settings as settings_module

    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8,not-an-address")
    with pytest.raises(ImproperlyConfigured, match="not-an-address"):
        importlib.reload(settings_module)
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1, ")  # a trailing comma is no entry
    assert importlib.reload(settings_module).TRUSTED_PROXIES == ["10.0.0.0/8", "127.0.0.1"]
    monkeypatch.delenv("TRUSTED_PROXIES")
    importlib.reload(settings_module)


# -- the limits that use it ----------------------------------------------------------------


@pytest.fixture
def two_anonymous_calls_a_minute(settings, db):
    settings.TRUSTED_PROXIES = [PROXY]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "anon": "2/min"},
    }


def test_drf_anonymous_throttle_ignores_a_forged_header(two_anonymous_calls_a_minute):
    client = Client()
    statuses = [
        client.get("/api/v1/streams/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_drf_anonymous_throttle_counts_each_client_behind_the_proxy(two_anonymous_calls_a_minute):
    client = Client()

    def get(who):
        return client.get("/api/v1/streams/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"6.6.6.6, {who}").status_code

    assert [get("198.51.100.1") for _ in range(3)] == [200, 200, 429]
    assert get("198.51.100.2") == 200  # another client, its own budget, whatever it forged on the left


def _signup(client, n: int, who: str | None, peer: str = PROXY):
    headers = {"REMOTE_ADDR": peer}
    if who:
        headers["HTTP_X_FORWARDED_FOR"] = who
    return client.post(
        "/_allauth/app/v1/auth/signup",
        json.dumps({"email": f"user{n}-{who}@example.com", "password": "a-long-Passw0rd!"}),
        content_type="application/json",
        **headers,
    )


@pytest.mark.django_db
def test_allauth_signup_limit_is_per_client_behind_the_proxy(settings):
    settings.TRUSTED_PROXIES = [PROXY]
    settings.ACCOUNT_RATE_LIMITS = {"signup": "2/m/ip"}
    client = Client()
    assert [_signup(client, n, "198.51.100.1").status_code for n in range(3)][2] == 429
    # One popular client used up its budget; the next one through the same proxy can sign up.
    assert _signup(Client(), 9, "198.51.100.2").status_code == 200


@pytest.mark.django_db
def test_allauth_signup_limit_ignores_a_forged_header(settings):
    settings.TRUSTED_PROXIES = [PROXY]
    settings.ACCOUNT_RATE_LIMITS = {"signup": "2/m/ip"}
    statuses = [_signup(Client(), n, f"198.51.100.{n}", peer="203.0.113.7").status_code for n in range(3)]
    assert statuses[2] == 429


@pytest.mark.django_db
def test_allauth_login_failures_are_counted_per_client(settings, django_user_model):
    settings.TRUSTED_PROXIES = [PROXY]
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "3/m/ip"}
    django_user_model.objects.create_user(email="owner@example.com", password="the-right-Passw0rd")

    def login(password, who):
        return Client().post(
            "/_allauth/app/v1/auth/login",
            json.dumps({"email": "owner@example.com", "password": password}),
            content_type="application/json",
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR=who,
        )

    attacker = [login("wrong", "198.51.100.66") for _ in range(4)]
    assert attacker[-1].json()["errors"][0]["code"] == "too_many_login_attempts"
    # Ten bad passwords from one client no longer lock out everyone behind the proxy.
    assert login("the-right-Passw0rd", "198.51.100.1").status_code == 200
