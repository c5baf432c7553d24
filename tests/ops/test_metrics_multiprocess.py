"""Several server processes sharing PROMETHEUS_MULTIPROC_DIR answer one total
(creatorcommerce/metrics.py, docs/operations.md "Metrics"): two real daphne processes serve
requests, and a scrape of either adds both up; a killed process's counts stay, and its
in-flight requests stop counting once the next process starts."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from creatorcommerce.metrics import forget_dead_processes
from tests.browser import free_port, wait_for_http
from tests.helpers import WAIT, parse_scrape, wait_for

ROOT = Path(__file__).resolve().parents[2]
LIVEZ = {"route": "livez", "method": "GET", "status": "2xx"}


def _env(tmp_path: Path, metrics_dir: Path) -> dict:
    return {
        **os.environ,
        # /livez and /metrics need no tables: an empty SQLite file of the test's own. The
        # database's collectors fail on it, which a scrape must survive.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
        "MQTT_URL": "",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "EMBEDDED_SCHEDULER": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }


def _get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=WAIT) as response:
        return response.read()


def _scrape(port: int):
    return parse_scrape(_get(port, "/metrics").decode())


@pytest.fixture
def two_servers(tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()  # empty before the processes start, as docs/operations.md says
    env = _env(tmp_path, metrics_dir)
    servers = []
    for n in range(2):
        port = free_port()
        log = open(tmp_path / f"daphne-{n}.log", "wb")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "creatorcommerce.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        servers.append((proc, port, log))
    try:
        for proc, port, _ in servers:
            wait_for_http(f"http://127.0.0.1:{port}/livez", proc, timeout=60)
        yield [(proc, port) for proc, port, _ in servers], metrics_dir
    finally:
        for proc, _, log in servers:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()


def test_two_processes_add_up_in_one_scrape(two_servers):
    servers, _ = two_servers
    (first, a), (_, b) = servers
    before = _scrape(a).value("cc_http_request_duration_seconds_count", **LIVEZ)  # the start-up probes
    for _ in range(3):
        _get(a, "/livez")
    for _ in range(2):
        _get(b, "/livez")
    # A request is counted once its answer is sent: poll, never sleep.
    total = before + 5
    wait_for(lambda: _scrape(a).value("cc_http_request_duration_seconds_count", **LIVEZ) == total, timeout=WAIT)
    figures = _scrape(b)
    assert figures.value("cc_http_request_duration_seconds_count", **LIVEZ) == total
    # Both processes answered: each scrape of one is counted under its route in the total.
    assert figures.value("cc_http_request_duration_seconds_count", route="metrics", method="GET", status="2xx") >= 2
    # The database's collectors failed (no tables here): the scrape did not.
    assert figures.value("cc_metrics_collector_up", collector="spine.outbox") == 0
    assert figures.value("cc_metrics_collector_up", collector="celery.queues") == 1
    # A process that is gone leaves its counts in the total.
    first.terminate()
    first.wait(timeout=10)
    assert _scrape(b).value("cc_http_request_duration_seconds_count", **LIVEZ) == total


def test_a_dead_processs_in_flight_requests_stop_counting(tmp_path):
    """A process killed mid-request never decrements its in-flight gauge; the next process
    to start removes the dead one's live gauges (counters stay)."""
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    code = (
        "from creatorcommerce import metrics\n"
        "metrics.in_flight('viewer').inc()\n"
        "metrics.admission_refused('viewer', 'overloaded')\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)

    def figures():
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(metrics_dir))
        return parse_scrape(generate_latest(registry).decode())

    assert figures().value("cc_admission_in_flight", lane="viewer") == 1
    assert len(forget_dead_processes(str(metrics_dir))) == 1
    after = figures()
    assert after.value("cc_admission_in_flight", lane="viewer") == 0
    assert after.value("cc_admission_refused_total", lane="viewer", reason="overloaded") == 1
