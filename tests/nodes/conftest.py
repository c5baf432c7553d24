"""Two nodes in one test (docs/edge.md, "Tests"): the cloud is a real daphne subprocess on
its own PostgreSQL database (NODE_ROLE=cloud, its own Redis index), the edge is the test
process (the pytest database, NODE_ROLE=edge), and a fault proxy of the suite's own sits
between them. The cloud's state is read with plain SQL on its database."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
from joserfc.jwk import OKPKey

from tests.browser import manage
from tests.helpers import wait_for
from tests.servers import daphne, free_port

EDGE = "edge-test"
SHOP = "edge-shop"
EDGE_KEY = OKPKey.generate_key("Ed25519", parameters={"kid": "edge-test-key-1", "use": "sig", "alg": "EdDSA"})
EDGE_PRIVATE_JWK = EDGE_KEY.as_dict(private=True)
EDGE_PUBLIC_JWK = EDGE_KEY.as_dict(private=False)

# Runs in `manage.py shell` on the cloud's database: the same shop, SKUs and locations the
# edge has (names, not ids, cross between nodes).
CLOUD_SEED = r"""
from tests.nodes.conftest import seed_catalog
seed_catalog()
"""


def seed_catalog():
    """A creator's shop ``edge-shop`` with TEE (USD) and CAP (EUR) at the default location,
    and a venue location ``Pop-up`` holding 30 TEE."""
    from apps.catalog.models import SKU, Location
    from apps.catalog.services import stock_adjust
    from tests.factories import CreatorFactory, make_sku

    shop = CreatorFactory(email="creator@edge.test", shop__slug=SHOP, shop__name="Edge shop").shop
    tee = make_sku(shop, code="TEE", price="10.00", stock=500)
    make_sku(shop, code="CAP", price="7.50", currency="EUR", stock=500)
    venue = Location.objects.create(shop=shop, name="Pop-up", kind=Location.Kind.VENUE)
    stock_adjust(sku=SKU.objects.get(pk=tee.pk), location=venue, set_to=30)
    return shop


def _dsn(name: str) -> str:
    parsed = urlparse(os.environ["DATABASE_URL"])
    return urlunparse(parsed._replace(path=f"/{name}"))


class Cloud:
    def __init__(self, base: str, dsn: str, env: dict, pid: int | None = None):
        self.base, self.dsn, self.env, self.pid = base, dsn, env, pid

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the cloud's server process used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def sql(self, statement: str, params=()) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def one(self, statement: str, params=()):
        rows = self.sql(statement, params)
        return rows[0][0] if rows else None

    def reset(self) -> None:
        """Forget everything synced (the catalog and the node's registration stay)."""
        self.sql(
            "TRUNCATE nodes_nodeevent, nodes_nodeorder, nodes_nodestock, nodes_nodeday, orders_orderline, "
            "orders_order CASCADE"
        )
        self.sql(
            "UPDATE nodes_node SET acked_seq=0, max_seq=0, events_held=0, totals='{}', totals_seq=0, "
            "last_sync_at=NULL, totals_at=NULL, is_active=true, head_seq=0, head_at=NULL"
        )

    def orders(self) -> list[tuple]:
        """(edge order id, status, total, currency, units) of the node's mirrored orders."""
        return self.sql(
            "SELECT m.edge_order, o.status, o.total::text, o.currency, "
            "(SELECT sum(quantity) FROM orders_orderline l WHERE l.order_id = o.id) "
            "FROM nodes_nodeorder m JOIN orders_order o ON o.id = m.order_id ORDER BY m.edge_order"
        )

    def node(self) -> dict:
        row = self.sql(
            "SELECT acked_seq, max_seq, events_held, totals, totals_seq, last_sync_at FROM nodes_node WHERE node_id=%s",
            [EDGE],
        )[0]
        names = ("acked_seq", "max_seq", "events_held", "totals", "totals_seq", "last_sync_at")
        return dict(zip(names, row, strict=True))


@pytest.fixture(scope="module")
def cloud(django_db_setup, django_db_blocker):
    """The cloud node: daphne on a free port over a fresh database cloned from the migrated
    test database, seeded with the shared catalog, the edge registered with node_add."""
    import psycopg
    from django.db import connections

    test_db = connections["default"].settings_dict["NAME"]
    name = f"{urlparse(os.environ['DATABASE_URL']).path.lstrip('/')}_cloud"
    with django_db_blocker.unblock():
        connections.close_all()
        for connection in connections.all():
            if getattr(connection, "pool", None) is not None:
                connection.close_pool()  # a template database must have no sessions
    admin_dsn = _dsn("postgres")
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(admin_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{test_db}"')
            break
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    dsn = _dsn(name)
    redis = os.environ.get("SYNC_CLOUD_REDIS_URL", "redis://127.0.0.1:6379/11")
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL"}}
    port = free_port()
    env.update(
        DJANGO_SETTINGS_MODULE="creatorcommerce.settings",
        DATABASE_URL=dsn,
        REDIS_URL=redis,
        CELERY_BROKER_URL=redis,
        EMBEDDED_SCHEDULER="0",
        NODE_ROLE="cloud",
        NODE_ID="cloud-test",
        DEBUG="1",
        SECRET_KEY="sync-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    env.pop("CLOUD_URL", None)
    tmp = Path(tempfile.mkdtemp(prefix="cc-sync-"))
    manage(env, "shell", "-c", CLOUD_SEED)
    (tmp / "edge.jwk").write_text(json.dumps(EDGE_PUBLIC_JWK))
    manage(env, "node_add", EDGE, str(tmp / "edge.jwk"))
    try:
        with daphne(env, tmp / "daphne.log", port=port) as server:
            yield Cloud(server.base, dsn, env, server.pid)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def proxy(cloud):
    from tests.nodes.faultproxy import FaultProxy

    fault_proxy = FaultProxy(int(cloud.base.rsplit(":", 1)[1]))
    fault_proxy.mode = "refuse"  # the link is up once a test says so (the set-up commits events too)
    yield fault_proxy
    fault_proxy.close()


@pytest.fixture
def edge(cloud, proxy, settings):
    """This process as the edge: NODE_ROLE=edge through the fault proxy, the shared catalog,
    the node key the cloud registered, a fresh cloud state."""
    from creatorcommerce.signing.models import SigningKey

    cloud.reset()
    settings.NODE_ROLE = "edge"
    settings.NODE_ID = EDGE
    settings.CLOUD_URL = proxy.url
    settings.SYNC_BACKOFF_MIN_SECONDS = 0.5
    settings.SYNC_BACKOFF_MAX_SECONDS = 4.0
    settings.SYNC_TIMEOUT_SECONDS = 5.0
    settings.SYNC_BATCH_SIZE = 50
    SigningKey.objects.create(
        kid=EDGE_PUBLIC_JWK["kid"], node=EDGE, private_jwk=EDGE_PRIVATE_JWK, public_jwk=EDGE_PUBLIC_JWK
    )
    seed_catalog()
    return cloud


@pytest.fixture
def beat(edge, proxy):
    """Celery beat's job in the test process: the relay task every 0.5 s (in eager mode it
    wakes the relay thread, as the embedded scheduler does)."""
    from apps.nodes.tasks import relay_outbox
    from creatorcommerce.celery import app

    stop = threading.Event()

    def tick():
        while not stop.wait(0.5):
            if app.conf.task_always_eager:
                relay_outbox.apply()
            else:  # a test with a real worker: beat sends the task to the broker
                relay_outbox.apply_async()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=5)
    # The relay thread may be mid-run: let it finish before the database is flushed.
    from apps.nodes.relay import _relay_lock

    _relay_lock.thread_lock.acquire(timeout=30)
    _relay_lock.thread_lock.release()


def wait_until(condition, *, timeout: float, message: str = "", interval: float = 0.1):
    """``tests.helpers.wait_for`` with the nodes tests' spelling."""
    return wait_for(condition, timeout, interval, message=message)
