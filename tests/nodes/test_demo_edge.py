"""The two-node demo (docs/edge.md, "A two-node demo") as a user runs it: ``manage.py
demo_edge`` (what ``make demo-edge`` runs) as a subprocess on free ports with no service
configured (both nodes on SQLite, as from a fresh clone), buys on the edge through the API,
the cloud sees them; the uplink is cut with the user's command (``demo_edge cut``), the edge
sells on (offline under the floor limit, refused over it), the link is restored and the
cloud catches up exactly once. Every wait is for a condition, with a deadline."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from creatorcommerce.demo import DEMO_PASSWORD, DEMO_USERS
from tests.browser import ROOT, free_port
from tests.nodes.conftest import wait_until

SHOP = "demo-studio"
# Environment a fresh clone does not have: the demo must work without any of it.
SERVICES = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MQTT_URL", "EMBEDDED_SCHEDULER", "NODE_ROLE", "NODE_ID"}


class Demo:
    def __init__(self, data: Path, cloud: str, edge: str, proc: subprocess.Popen, lines: list[str], env: dict):
        self.data, self.cloud, self.edge, self.proc, self.lines, self.env = data, cloud, edge, proc, lines, env

    def said(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def uplink(self, action: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", "demo_edge", action, "--data-dir", str(self.data)],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout

    def cloud_sql(self, statement: str, params=()) -> list[tuple]:
        with sqlite3.connect(self.data / "cloud.sqlite3", timeout=20) as conn:
            return conn.execute(statement, params).fetchall()

    def edge_sql(self, statement: str, params=()) -> list[tuple]:
        with sqlite3.connect(self.data / "edge.sqlite3", timeout=20) as conn:
            return conn.execute(statement, params).fetchall()


def call(base: str, path: str, body=None, *, token: str | None = None, key: str | None = None):
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["X-Session-Token"] = token
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(
        base + path, data=None if body is None else json.dumps(body).encode(), headers=headers,
        method="GET" if body is None else "POST",
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def login(base: str) -> str:
    status, body = call(
        base, "/_allauth/app/v1/auth/login", {"email": DEMO_USERS["viewer"][0], "password": DEMO_PASSWORD}
    )
    assert status == 200, body
    return body["meta"]["session_token"]


def buy(base: str, token: str, sku: str, quantity: int):
    body = {"sku": sku, "quantity": quantity, "shop": SHOP}
    return call(base, "/api/v1/orders/", body, token=token, key=f"demo-{uuid.uuid4()}")


@pytest.fixture
def demo():
    data = Path(tempfile.mkdtemp(prefix="cc-demo-edge-"))
    cloud_port, edge_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in SERVICES}
    env.update(DEBUG="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "demo_edge", "--data-dir", str(data), "--fresh",
         "--cloud-port", str(cloud_port), "--edge-port", str(edge_port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []

    def read():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    handle = Demo(data, f"http://127.0.0.1:{cloud_port}", f"http://127.0.0.1:{edge_port}", proc, lines, env)
    try:
        wait_until(
            lambda: handle.said("Two-node demo is up.") or proc.poll() is not None,
            timeout=180,
            message="the demo started",
            interval=0.5,
        )
        assert proc.poll() is None, "the demo exited:\n" + "\n".join(lines[-40:])
        yield handle
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        reader.join(timeout=5)
        print("demo output (tail):\n" + "\n".join(lines[-25:]))
        shutil.rmtree(data, ignore_errors=True)


def cloud_copy(demo: Demo, token: str, receipt: str) -> dict | None:
    """The cloud's copy of an edge order, found by its receipt in the viewer's "My orders"."""
    status, orders = call(demo.cloud, "/api/v1/orders/", token=token)
    assert status == 200, orders
    return next((order for order in orders if order["receipt"] == receipt), None)


def test_the_two_node_demo_sells_through_a_cut_uplink_and_the_cloud_catches_up(demo):
    node_id = (demo.data / "node_id").read_text().strip()
    assert demo.said(f"node {node_id}: registered")  # node_add ran
    assert demo.said(demo.cloud + "/") and demo.said(demo.edge.replace("127.0.0.1", "localhost") + "/")  # both URLs
    assert demo.said(DEMO_USERS["viewer"][0]) and demo.said(DEMO_PASSWORD)  # and the logins

    # Both nodes were seeded with the same shop and SKU codes; the edge has no past orders.
    skus = "SELECT s.code FROM catalog_sku s JOIN accounts_shop p ON p.id = s.shop_id WHERE p.slug = ? ORDER BY 1"
    assert demo.edge_sql(skus, [SHOP]) == demo.cloud_sql(skus, [SHOP]) != []
    assert demo.edge_sql("SELECT count(*) FROM orders_order")[0][0] == 0

    # The edge was registered for the demo shop's venue and pulled its catalog: it owns the
    # venue's stock now (docs/edge.md, "Catalog to the edge").
    wait_until(
        lambda: demo.cloud_sql("SELECT venue_taken_at FROM nodes_node WHERE node_id = ?", [node_id])[0][0],
        timeout=60,
        message="the edge pulled its catalog and took its venue over",
    )

    edge_token, cloud_token = login(demo.edge), login(demo.cloud)

    # Online: a buy on the edge reaches the cloud.
    status, first = buy(demo.edge, edge_token, "STICKERS", 1)
    assert (status, first["status"]) == (201, "paid"), first
    copy = wait_until(lambda: cloud_copy(demo, cloud_token, first["receipt"]), timeout=30, message="in the cloud")
    assert (copy["status"], copy["total"]) == ("paid", first["total"])

    # Cut the uplink (the link to the cloud and the payment gateway): the edge sells on.
    assert "link to the cloud cut, payment gateway unreachable" in demo.uplink("cut")
    status, offline = buy(demo.edge, edge_token, "STICKERS", 2)
    assert (status, offline["status"], offline["offline"]["capture"]) == (201, "accepted_offline", "pending"), offline
    status, refused = buy(demo.edge, edge_token, "TEE-M", 2)  # 58.00 + shipping: over the floor limit
    assert (status, refused["code"]) == (503, "offline_over_floor_limit"), refused
    status, small = buy(demo.edge, edge_token, "STICKERS", 1)
    assert (status, small["status"]) == (201, "accepted_offline"), small
    wait_until(lambda: demo.said("[link] cut"), timeout=30, message="the relay tried and the link refused")
    assert cloud_copy(demo, cloud_token, offline["receipt"]) is None
    assert cloud_copy(demo, cloud_token, small["receipt"]) is None

    # Restore: the cloud catches up, and the offline orders are captured (paid on both).
    assert "link to the cloud up, payment gateway reachable" in demo.uplink("restore")

    def caught_up():
        copies = [cloud_copy(demo, cloud_token, order["receipt"]) for order in (offline, small)]
        return all(c is not None and c["status"] == "paid" for c in copies) and copies

    copies = wait_until(caught_up, timeout=90, message="the cloud caught up and the offline orders were captured")
    assert [c["total"] for c in copies] == [offline["total"], small["total"]]
    edge_orders = demo.edge_sql("SELECT id, status, total FROM orders_order WHERE status = 'paid' ORDER BY id")
    assert [row[0] for row in edge_orders] == [first["id"], offline["id"], small["id"]]

    # Exactly once: every event the edge recorded is held once, each edge order mirrored once.
    def settled():
        edge_events = demo.edge_sql("SELECT count(*) FROM spine_outboxevent")[0][0]
        held = demo.cloud_sql("SELECT acked_seq, events_held FROM nodes_node WHERE node_id = ?", [node_id])[0]
        return held == (edge_events, edge_events) and edge_events

    total = wait_until(settled, timeout=60, message="every edge event acknowledged")
    assert demo.cloud_sql("SELECT count(*), count(DISTINCT uuid) FROM nodes_nodeevent") == [(total, total)]
    mirrored = demo.cloud_sql(
        "SELECT m.edge_order, o.status, o.total FROM nodes_nodeorder m JOIN orders_order o ON o.id = m.order_id "
        "WHERE o.status = 'paid' ORDER BY m.edge_order"
    )
    assert [(e, s, str(t)) for e, s, t in mirrored] == [(o, s, str(t)) for o, s, t in edge_orders]

    # Ctrl-C stops both nodes.
    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(timeout=30) == 0
    wait_until(lambda: demo.said("Both nodes stopped."), timeout=5, message="the demo said it stopped")
    for base in (demo.cloud, demo.edge):
        with pytest.raises(OSError):
            urllib.request.urlopen(base + "/livez", timeout=2)
