"""Test set-up shared by every test module.

Tests that need a real service are marked ``postgres``, ``redis`` or ``mqtt`` (and
``browser`` or ``haproxy`` for a Debian package they start). Without the
service configured they skip with the reason; with ``REQUIRE_SERVICES=1`` (CI) a missing
service fails the test instead, so CI cannot go green on skipped service tests.
"""

from __future__ import annotations

import os
import shutil
import socket
from urllib.parse import urlparse

import pytest
from django.conf import settings

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def _service_problem(name: str) -> str | None:
    if name == "postgres":
        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
            return "needs PostgreSQL: set DATABASE_URL=postgres://..."
        return None
    if name == "redis":
        url = os.environ.get("REDIS_URL", "")
        if not url:
            return "needs Redis: set REDIS_URL=redis://127.0.0.1:6379/0"
        return None if _reachable(url, 6379) else f"Redis at {url} is not reachable"
    if name == "mqtt":
        url = os.environ.get("MQTT_URL", "")
        if not url:
            return "needs an MQTT broker: set MQTT_URL=mqtt://127.0.0.1:1883"
        return None if _reachable(url, 1883) else f"MQTT broker at {url} is not reachable"
    if name == "browser":
        if not os.path.exists("/usr/bin/chromium"):
            return "needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)"
        return None
    if name == "haproxy":
        if shutil.which("haproxy") is None:
            return "needs Debian's HAProxy (apt-get install -y haproxy)"
        if os.geteuid() != 0:
            return "needs root: the shipped deploy/haproxy/haproxy.cfg drops to the user haproxy, as Debian's does"
        return None
    return None


def pytest_runtest_setup(item):
    for marker in ("postgres", "redis", "mqtt", "browser", "haproxy"):
        if item.get_closest_marker(marker) is None:
            continue
        problem = _service_problem(marker)
        if problem:
            if REQUIRE_SERVICES:
                pytest.fail(f"REQUIRE_SERVICES=1 but this test {problem}", pytrace=False)
            pytest.skip(problem)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def redis_url():
    return os.environ["REDIS_URL"]


@pytest.fixture
def mqtt_url():
    return os.environ["MQTT_URL"]


@pytest.fixture(params=["pubsub", "core"])
def redis_channel_layer(request, settings, redis_url):
    """channels-redis on the real Redis: each test using it runs on both of its layers."""
    from channels.layers import channel_layers

    from tests.helpers import use_redis_layer

    yield use_redis_layer(settings, redis_url, request.param)
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _fresh_channel_layers():
    """Each test starts with fresh layer instances (the in-memory one keeps state)."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture(autouse=True)
def _celery_eager(settings):
    """Tasks run in-process unless a test starts a real worker (see ``celery_worker``)."""
    from creatorcommerce.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
async def close_db_after():
    """Async tests reach the database from asgiref's sync thread; close that connection after
    the test, or dropping the test database finds it still in use."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    """Production settings want collected, hashed static files; tests render templates
    without running collectstatic first."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 costs ~200 ms per user on purpose; tests create hundreds of users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_signing_key_cache():
    """The signing key is cached per process; a test database flushed between tests must not
    leave a cached key that no longer exists."""
    from creatorcommerce.signing.services import signing_key_cache_clear

    signing_key_cache_clear()
    yield
    signing_key_cache_clear()


@pytest.fixture(scope="module")
def server():
    """daphne over a fresh SQLite install with the demo data and tests/browser.py's
    STREAM_SETUP (a live stream, a SKU to buy, two more viewers): one per browser module."""
    from tests.browser import STREAM_SETUP, demo_server

    with demo_server(STREAM_SETUP) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, one per browser module."""
    from tests.browser import chromium

    with chromium() as chromium_browser:
        yield chromium_browser


@pytest.fixture
def hops(monkeypatch):
    """Counts crossings from the event loop to a thread (``sync_to_async`` calls: a request
    that reaches the pool is one)."""
    from asgiref.sync import SyncToAsync

    counter = {"n": 0}
    original = SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        counter["n"] += 1
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counting)
    return counter
