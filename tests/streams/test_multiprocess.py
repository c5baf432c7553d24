"""Two daphne processes sharing Redis and PostgreSQL, as in a real deployment: viewers
connected to either (each process has its own broadcaster) see a buy made through one of
them within a second."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import websockets
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from django.utils import timezone

from apps.streams.models import Stream
from apps.streams.services import pin_add, stream_start
from tests.factories import PASSWORD, CreatorFactory, make_buyer, make_sku
from tests.helpers import WAIT

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daphne on {port} exited: {proc.stdout.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"daphne on {port} did not start")


@pytest.fixture
def two_servers(redis_url):
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "SECRET_KEY": os.environ["SECRET_KEY"],
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    procs, ports = [], [_free_port(), _free_port()]
    for port in ports:
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "creatorcommerce.asgi:application",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        for port, proc in zip(ports, procs, strict=True):
            _wait_for(port, proc)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _http(opener, method, url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_viewers_on_both_processes_see_a_buy_made_through_one(two_servers):
    port_a, port_b = two_servers
    creator = CreatorFactory()
    sku = make_sku(creator.shop, code="MP-1", stock=10)
    stream = Stream.objects.create(shop=creator.shop, title="Two servers", starts_at=timezone.now())
    stream_start(stream=stream)
    pin_add(stream=stream, sku=sku)
    buyer = make_buyer(email="mp-buyer@example.test")
    # The servers use the production hashers, not the tests' fast one.
    buyer.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    buyer.save(update_fields=["password"])

    # Viewers: anonymous, two on server A and one on server B (each process serves its own
    # viewers from its own broadcaster).
    def viewer_on(port):
        origin = f"http://127.0.0.1:{port}"
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        status, token = _http(
            opener, "POST", f"{origin}/api/v1/streams/{stream.pk}/viewer-token", headers={"Origin": origin}
        )
        assert status == 200, token
        jar = next(h for h in opener.handlers if isinstance(h, urllib.request.HTTPCookieProcessor)).cookiejar
        cookies = "; ".join(f"{c.name}={c.value}" for c in jar)
        url = f"ws://127.0.0.1:{port}/ws/streams/{stream.pk}/?token={token['token']}"
        return url, origin, cookies

    viewers = [viewer_on(port_a), viewer_on(port_a), viewer_on(port_b)]

    # The buyer: an app client, on server B.
    origin_b = f"http://127.0.0.1:{port_b}"
    client = urllib.request.build_opener()
    status, login = _http(
        client, "POST", f"{origin_b}/_allauth/app/v1/auth/login", {"email": buyer.email, "password": PASSWORD}
    )
    assert status == 200, login
    session_token = login["meta"]["session_token"]

    async def scenario():
        sockets = []
        for url, origin, cookies in viewers:
            ws = await websockets.connect(url, origin=origin, additional_headers={"Cookie": cookies})
            sockets.append(ws)
            snapshot = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert snapshot["type"] == "snapshot" and snapshot["stock"] == {"MP-1": 10}
        try:
            status, order = await asyncio.to_thread(
                _http,
                client,
                "POST",
                f"{origin_b}/api/v1/orders/",
                {"sku": "MP-1", "quantity": 2, "stream": stream.pk},
                {"X-Session-Token": session_token, "Idempotency-Key": "two-servers-001"},
            )
            bought_at = time.monotonic()
            assert status == 201, order

            async def first_stock(ws):
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
                    if message["type"] == "stock":
                        return message, time.monotonic() - bought_at

            return await asyncio.gather(*(first_stock(ws) for ws in sockets))
        finally:
            for ws in sockets:
                await ws.close()

    # Pushed to both processes' viewers (how fast is bench/run.py's business, not a test's).
    for message, _delay in asyncio.run(scenario()):
        assert message["stock"] == {"MP-1": 8}
