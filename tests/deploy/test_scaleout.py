"""Scale-out as in production (README, "Deploying"): two real daphne processes behind Debian's
HAProxy running the shipped deploy/haproxy/haproxy.cfg, one Redis (the channel layer), one
PostgreSQL (the test database, which both processes use). Not a timing test.

- A buy that the proxy hands to one process reaches a viewer whose socket the proxy gave to
  the other: the spine's ``stock.changed`` crosses processes through Redis.
- The viewer's process dies (SIGKILL): the viewer's socket closes, buys through the proxy
  still succeed at once (a refused connection is retried on the other process before the
  health check notices), the proxy takes the dead process out of its pool, and the viewer
  reconnects through the proxy, gets a snapshot with the current stock and follows the next
  buy.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import urllib.error
import urllib.request
from urllib.parse import quote, urlparse, urlunparse

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.factories import CreatorFactory, make_buyer, make_sku
from tests.helpers import WAIT, wait_for
from tests.servers import Daphne

from .haproxy import HAProxy

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.haproxy]

STOCK = 20


def _request(url: str, *, method: str = "GET", headers: dict | None = None, body: dict | None = None):
    """(status, headers, JSON body) of one request on a connection of its own."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Accept": "application/json"})
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read() or b"null")


def _seed():
    """A live stream pinning a SKU with ``STOCK`` units, and a buyer with a card, an address
    and an app session (``X-Session-Token``), all committed for the servers to see."""
    from django.contrib.auth import login
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.test import RequestFactory
    from django.utils import timezone

    from apps.streams.models import Stream
    from apps.streams.services import pin_add, stream_start

    shop = CreatorFactory().shop
    sku = make_sku(shop, code="TEE", stock=STOCK)
    stream = Stream.objects.create(shop=shop, title="Scale-out", starts_at=timezone.now())
    stream_start(stream=stream)
    pin_add(stream=stream, sku=sku)
    request = RequestFactory().get("/")
    request.session = SessionStore()
    login(request, make_buyer(), backend="apps.accounts.backends.ModelBackend")
    request.session.save()
    return stream.pk, request.session.session_key


@pytest.fixture
def cluster(transactional_db, tmp_path):
    """Two daphne processes on the test database and the test's Redis, behind HAProxy."""
    from django.db import connections

    url = urlparse(os.environ["DATABASE_URL"])
    database = urlunparse(url._replace(path="/" + connections["default"].settings_dict["NAME"]))
    redis = os.environ["REDIS_URL"]
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="creatorcommerce.settings",
        DATABASE_URL=database,
        REDIS_URL=redis,
        # The spine's handlers wait in the broker, as on a node that runs only web processes.
        CELERY_BROKER_URL=redis,
        EMBEDDED_SCHEDULER="0",
        DEBUG="1",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # The same SECRET_KEY as this process (its sessions) and as each other (viewer
        # tokens from one are checked by the other): inherited from the environment.
        TRUSTED_PROXIES="127.0.0.1",
        DB_POOL_MIN_SIZE="1",
        DB_POOL_MAX_SIZE="4",
        PYTHONUNBUFFERED="1",
    )
    servers = [Daphne(env, tmp_path / f"web{i}.log") for i in (1, 2)]
    proxy = HAProxy(tmp_path, [s.port for s in servers])
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready(WAIT * 3)
        proxy.start()
        wait_for(lambda: proxy.status("web1") == proxy.status("web2") == "UP", WAIT, 0.1, message="both servers up")
        yield {"web1": servers[0], "web2": servers[1]}, proxy
    finally:
        proxy.stop()
        for server in servers:
            server.stop()
        for server in servers:
            tail = server.tail()
            if "Traceback" in tail:
                print(f"{server.log.name}:\n{tail}")


class Viewer:
    """A storefront viewer through the proxy: a viewer token for its anonymous session (a
    fresh one per connect, as the page does), then the socket."""

    def __init__(self, proxy: HAProxy, stream_id: int):
        self.proxy, self.stream_id = proxy, stream_id
        self.cookie: str | None = None
        self.stock: int | None = None
        self.ws = None
        self.sockets = contextlib.ExitStack()

    def __enter__(self) -> Viewer:
        return self

    def __exit__(self, *exc) -> None:
        self.sockets.close()

    def connect(self) -> dict:
        headers = {"Cookie": f"sessionid={self.cookie}"} if self.cookie else {}
        status, response_headers, body = _request(
            f"{self.proxy.base}/api/v1/streams/{self.stream_id}/viewer-token", method="POST", headers=headers
        )
        assert status == 200, body
        for value in response_headers.get_all("Set-Cookie") or []:
            if value.startswith("sessionid="):
                self.cookie = value.split(";", 1)[0].split("=", 1)[1]
        self.ws = self.sockets.enter_context(
            connect(
                f"ws://127.0.0.1:{self.proxy.port}/ws/streams/{self.stream_id}/?token={quote(body['token'])}",
                additional_headers={"Cookie": f"sessionid={self.cookie}"},
                open_timeout=WAIT,
            )
        )
        snapshot = json.loads(self.ws.recv(timeout=WAIT))
        assert snapshot["type"] == "snapshot", snapshot
        self.stock = snapshot["stock"]["TEE"]
        return snapshot

    def follow_until(self, value: int) -> None:
        """Read ``stock`` messages until TEE shows ``value`` (fails after WAIT seconds)."""

        def arrived() -> bool:
            try:
                message = json.loads(self.ws.recv(timeout=0.5))
            except TimeoutError:
                return False
            if message.get("type") == "stock" and "TEE" in message.get("stock", {}):
                self.stock = message["stock"]["TEE"]
            return self.stock == value

        wait_for(arrived, WAIT, 0, message=f"the viewer to show {value} (it shows {self.stock})")

    def closed(self) -> bool:
        try:
            self.ws.recv(timeout=0.5)
        except TimeoutError:
            return False
        except ConnectionClosed:
            return True
        return False


def _server_of_viewer(proxy: HAProxy) -> str:
    stats = proxy.stats()
    holding = [name for name in ("web1", "web2") if stats[("viewers", name)]["scur"] == "1"]
    assert len(holding) == 1, {name: stats[("viewers", name)]["scur"] for name in ("web1", "web2")}
    return holding[0]


def _paid(proxy: HAProxy, name: str) -> int:
    """2xx answers the proxy has had from that server."""
    return int(proxy.stats()[("web", name)]["hrsp_2xx"])


def _buyer(proxy: HAProxy, session_token: str, stream_id: int):
    """A function that buys one TEE through the proxy (a new Idempotency-Key each time),
    asserts the 201 and returns the request id the app answered with."""
    buys = iter(range(1, 1000))
    prefix = f"scale-out-{stream_id}"

    def buy() -> str:
        status, headers, body = _request(
            f"{proxy.base}/api/v1/orders/",
            method="POST",
            headers={
                "X-Session-Token": session_token,
                "Idempotency-Key": f"{prefix}-{next(buys)}",
                "X-Request-ID": "chosen-by-the-client",
            },
            body={"sku": "TEE", "quantity": 1, "stream": stream_id},
        )
        assert status == 201, body
        return headers["X-Request-ID"]

    return buy


def test_a_buy_on_one_process_reaches_a_viewer_on_the_other_and_one_process_dying_leaves_the_other_serving(
    cluster,
):
    stream_id, session_token = _seed()
    servers, proxy = cluster
    buy = _buyer(proxy, session_token, stream_id)

    with Viewer(proxy, stream_id) as viewer:
        assert viewer.connect()["stock"]["TEE"] == STOCK
        held_by = _server_of_viewer(proxy)
        other = "web2" if held_by == "web1" else "web1"

        # Buy until the proxy has handed one to the process the viewer is not on (it spreads
        # requests over both: two or three buys at most).
        sold = 0
        while True:
            before = _paid(proxy, other)
            # The proxy names every request (its id, not the client's), and the app answers it.
            assert re.fullmatch(r"[0-9A-F:_]+", buy())
            sold += 1
            if _paid(proxy, other) > before:
                break
            assert sold < 6, "the proxy never sent a buy to the second process"
        viewer.follow_until(STOCK - sold)

        # The viewer's process dies.
        servers[held_by].kill()
        wait_for(viewer.closed, WAIT, 0, message="the viewer's socket to close")
        # Buys keep working through the proxy straight away, health check or not.
        for _ in range(3):
            buy()
            sold += 1
        wait_for(
            lambda: proxy.status(held_by).startswith("DOWN"), WAIT, 0.1, message=f"the proxy to take {held_by} out"
        )

        # The viewer comes back (on the survivor), with the stock as it is now, and follows on.
        assert viewer.connect()["stock"]["TEE"] == STOCK - sold
        assert _server_of_viewer(proxy) == other
        buy()
        sold += 1
        viewer.follow_until(STOCK - sold)


def test_a_rolling_restart_with_proxy_server_drain_and_ready(cluster):
    """deploy/haproxy/README.md, "Rolling restart": ``manage.py proxy_server drain`` takes a
    process out of the pool (new buys go to the other), it restarts, its viewer comes back
    on the other process, and ``ready`` puts it back once HAProxy sees it UP."""
    from io import StringIO

    from django.core.management import call_command

    stream_id, session_token = _seed()
    servers, proxy = cluster
    buy = _buyer(proxy, session_token, stream_id)
    admin = {"socket": str(proxy.socket_path), "stdout": StringIO()}
    sold = 0
    with Viewer(proxy, stream_id) as viewer:
        viewer.connect()
        restarting = _server_of_viewer(proxy)
        other = "web2" if restarting == "web1" else "web1"

        call_command("proxy_server", "drain", restarting, wait=5, **admin)
        assert proxy.status(restarting) == "DRAIN"
        paid_before = _paid(proxy, restarting)
        for _ in range(4):
            buy()
            sold += 1
        assert _paid(proxy, restarting) == paid_before  # every buy went to the other process

        servers[restarting].stop()
        wait_for(viewer.closed, WAIT, 0, message="the restarting process's viewer socket to close")
        servers[restarting].launch()
        servers[restarting].wait_ready(WAIT * 3)
        assert viewer.connect()["stock"]["TEE"] == STOCK - sold
        assert _server_of_viewer(proxy) == other  # drained: sockets do not go there either

        call_command("proxy_server", "ready", restarting, wait=WAIT * 2, **admin)
        assert proxy.status(restarting).startswith("UP")

        def reached_again() -> bool:
            nonlocal sold
            buy()
            sold += 1
            return _paid(proxy, restarting) > paid_before

        wait_for(reached_again, WAIT, 0, message=f"a buy to reach {restarting} again")
        viewer.follow_until(STOCK - sold)

    out = StringIO()
    call_command("proxy_server", "status", socket=str(proxy.socket_path), stdout=out)
    assert [line.split("\t")[0] for line in out.getvalue().splitlines()] == ["web1", "web2"]


def test_proxy_server_refuses_what_it_cannot_do(cluster, tmp_path):
    from django.core.management import CommandError, call_command

    _servers, proxy = cluster
    with pytest.raises(CommandError, match="has no server 'web9'"):
        call_command("proxy_server", "drain", "web9", socket=str(proxy.socket_path))
    with pytest.raises(CommandError, match="needs a server name"):
        call_command("proxy_server", "ready", socket=str(proxy.socket_path))
    with pytest.raises(CommandError, match="cannot reach HAProxy's admin socket"):
        call_command("proxy_server", "status", socket=str(tmp_path / "nothing.sock"))
