"""The benchmark suite (issue 5): the buy path and the live fan-out, measured side by side in
one run against this machine's own limits. Not a test: it never fails on timings.

    .venv/bin/python bench/run.py            # everything, about 6½ minutes (at most 12)
    .venv/bin/python bench/run.py --quick    # fewer, shorter runs, under 2 minutes
    .venv/bin/python bench/run.py --smoke    # tiny counts, end to end (tests/bench/test_smoke.py)
    .venv/bin/python bench/run.py --only ceiling,buy --servers uvicorn
    .venv/bin/python bench/run.py --only buy --servers daphne --tree ../wt-before --redis-db 8

It starts what it measures (daphne or uvicorn on core 0, the baseline WebSocket server on
core 0, load generators on core 1, with taskset), on production-like settings: a fresh
PostgreSQL database ``cc_bench_<timestamp>`` that it creates, migrates, seeds and drops; an
empty Redis database index that it flushes afterwards; DEBUG=0, a random SECRET_KEY,
EMBEDDED_SCHEDULER=0, a buy rate limit high enough never to trigger. Every load loop is
bounded in count and in time and targets 127.0.0.1 only. Everything it started is stopped
on the way out, also on Ctrl-C or an error. It prints a table and writes
bench/results/<timestamp>.json (server logs next to it, in bench/results/<timestamp>-logs/).

Scenarios: ceiling (GET /livez), buy (open-loop POST /api/v1/orders/), buy3 (the same with
three SKUs of one shop in one body's ``lines``), pgbench (the hot-row UPDATE), fanout
(WebSocket viewers of a live stream, per channel layer), baseline (the ``websockets``
broadcast server with the same clients and cadence). Fan-out steps run at
the contract's cadence (10 stock changes a second: a stream pushes at most 10 a second), and
the largest step once more above it (``overload_changes_per_s``, 20), each its own row.

``--tree`` runs the servers, migrations and seed from another checkout of the project (e.g. a
``git worktree`` of an older commit) with this checkout's bench code: bench/compare.py uses
it to measure two commits in one sitting. ``--redis-db`` pins the Redis index (the run
flushes it afterwards) instead of taking the first empty one from 15 down.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from loadgen import (  # noqa: E402
    Connection,
    HttpError,
    build_request,
    closed_loop,
    distribution,
    open_loop,
    percentiles,
    wait_http,
)

HOST = "127.0.0.1"
# The application's source tree: servers, manage.py and seed.py's imports run from it
# (``--tree``; this checkout by default).
APP = ROOT


def _services() -> tuple[dict, tuple[str, int]]:
    """Where PostgreSQL and Redis are: the host, port and credentials of DATABASE_URL and
    REDIS_URL when they are set (CI, the test suite), else the local defaults. Only the
    server is taken from them: the run always makes its own database and Redis index."""
    from urllib.parse import unquote, urlparse

    pg = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        parsed = urlparse(url)
        pg = {"host": parsed.hostname or pg["host"], "port": parsed.port or 5432, "user": parsed.username or "postgres"}
        if parsed.password:
            pg["password"] = unquote(parsed.password)
    redis_at = ("127.0.0.1", 6379)
    url = os.environ.get("REDIS_URL", "")
    if url.startswith("redis://"):
        parsed = urlparse(url)
        redis_at = (parsed.hostname or "127.0.0.1", parsed.port or 6379)
    return pg, redis_at


PG, REDIS_AT = _services()


def pg_url(database: str, *, masked: bool = False) -> str:
    from urllib.parse import quote

    secret = "***" if masked else quote(PG.get("password", ""), safe="")
    auth = PG["user"] + (f":{secret}" if PG.get("password") else "")
    return f"postgres://{auth}@{PG['host']}:{PG['port']}/{database}"


SCENARIOS = ("ceiling", "buy", "buy3", "pgbench", "fanout", "baseline")
LINES_PER_BUY3 = 3
SERVERS = ("daphne", "uvicorn")
LAYERS = ("core", "pubsub")

PROFILES = {
    "default": {
        "ceiling_seconds": 8,
        "rates": [50, 100, 200, 400],
        # The 3-line buy (buy3): one request, three SKUs of one shop, one unit each.
        "rates3": [100, 200],
        "rate_seconds": 10,
        "pgbench_seconds": 10,
        "pgbench_clients": [1, 4],
        "viewers": [500, 1000, 2000],
        "per_process": 500,
        # The contract's cadence (a stream pushes at most 10 a second; the design's baseline is
        # measured at 10 messages a second), then the largest step at twice that.
        "changes_per_s": 10,
        "overload_changes_per_s": 20,
        "change_seconds": 5,
        "settle_seconds": 1.0,
        "converge_limit": 8,
        "buyers": 100,
        "request_timeout": 10,
        "quiet_limit": 60,
        "max_minutes": 12,
    },
    "quick": {
        "ceiling_seconds": 3,
        "rates": [50, 200],
        "rates3": [200],
        "rate_seconds": 3,
        "pgbench_seconds": 3,
        "pgbench_clients": [1, 4],
        "viewers": [200, 400],
        "per_process": 200,
        "changes_per_s": 10,
        "overload_changes_per_s": 20,
        "change_seconds": 3,
        "settle_seconds": 0.5,
        "converge_limit": 3,
        "buyers": 40,
        "request_timeout": 3,
        "quiet_limit": 15,
        "max_minutes": 4,
    },
    "smoke": {
        "ceiling_seconds": 1,
        "rates": [10],
        "rates3": [10],
        "rate_seconds": 1,
        "pgbench_seconds": 1,
        "pgbench_clients": [1],
        "viewers": [20],
        "per_process": 20,
        "changes_per_s": 20,
        "overload_changes_per_s": 40,
        "change_seconds": 0.25,
        "settle_seconds": 0.5,
        "converge_limit": 3,
        "buyers": 5,
        "request_timeout": 5,
        "quiet_limit": 10,
        # Tiny counts, but it still migrates, seeds and starts five servers: 32 s on a quiet
        # machine; on a shared one seen 8 times that (a CI run where the whole suite ran 9x
        # slower), so the limit only stops a run that hangs.
        "max_minutes": 12,
    },
}
WARMUP_BUYS = 20


# -- processes ----------------------------------------------------------------------------


class Started:
    """Everything this run started, so that it can all be stopped whatever happens."""

    def __init__(self):
        self.groups: dict[int, str] = {}  # pid (= process group) -> name
        self.database: str | None = None
        self.redis_url: str | None = None

    def add(self, pid: int, name: str) -> None:
        self.groups[pid] = name

    def stop(self, pid: int, timeout: float = 10.0) -> None:
        """SIGTERM to the process group, SIGKILL if it is still there after ``timeout``."""
        if pid not in self.groups:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        self.groups.pop(pid, None)

    def stop_all(self) -> None:
        for pid in reversed(list(self.groups)):  # clients before the servers they talk to
            self.stop(pid, timeout=5.0)


STARTED = Started()


_TASKSET = shutil.which("taskset") is not None and len(os.sched_getaffinity(0)) >= 2


def have_taskset() -> bool:
    """taskset is installed and this process may use two cores or more (decided at start,
    before this process pins itself to core 1)."""
    return _TASKSET


def on_core(core: int, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *cmd] if have_taskset() else cmd


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def spawn(name: str, cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    handle = log.open("ab")
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=APP,
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    handle.close()
    STARTED.add(proc.pid, name)
    return proc


async def run_cmd(cmd: list[str], *, env: dict | None = None, timeout: float = 120.0) -> tuple[int, str]:
    """Run to completion (bounded by ``timeout``); return code and stdout+stderr."""
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        env=env,
        cwd=APP,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    STARTED.add(proc.pid, cmd[0])
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        STARTED.stop(proc.pid, timeout=1)
        raise RuntimeError(f"{' '.join(cmd[:4])}... did not finish within {timeout}s") from None
    STARTED.groups.pop(proc.pid, None)
    return proc.returncode, out.decode("utf-8", "replace")


# -- environment --------------------------------------------------------------------------


def bench_env(base: dict, *, database: str, redis_url: str, layer: str | None = None) -> dict:
    """The servers' environment. ``layer``: CHANNEL_LAYER_BACKEND, or None for the app's
    default. Service URLs and settings of the caller's environment are not passed on."""
    dropped = {
        "DATABASE_URL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "MQTT_URL",
        "DJANGO_SETTINGS_MODULE",
        "CHANNEL_LAYER_BACKEND",
    }
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(base)
    env.update(
        {
            "DATABASE_URL": pg_url(database),
            "REDIS_URL": redis_url,
            "DJANGO_SETTINGS_MODULE": "creatorcommerce.settings",
            "PYTHONUNBUFFERED": "1",
            "BENCH_APP_TREE": str(APP),
        }
    )
    if layer is not None:
        env["CHANNEL_LAYER_BACKEND"] = layer
    return env


def production_like() -> dict:
    """The servers' settings besides the services: production's, with a random SECRET_KEY
    and no limit that the bench's few buyers on 127.0.0.1 could trigger."""
    return {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "EMBEDDED_SCHEDULER": "0",
        # All load comes from 127.0.0.1 and a few users: no rate limit may trigger (the
        # throttles still run, and still cost what they cost).
        "BUY_RATE_LIMIT": "1000000/s",
        "API_ANON_RATE": "1000000/s",
        "API_USER_RATE": "1000000/s",
        "NODE_ID": "bench",
        "LOG_LEVEL": "WARNING",
    }


def public_settings(secret_free_base: dict, database: str, redis_url: str) -> dict:
    shown = {k: ("<random, 64 chars>" if k == "SECRET_KEY" else v) for k, v in secret_free_base.items()}
    shown.update(
        {
            "DATABASE_URL": pg_url(database, masked=True),
            "REDIS_URL": redis_url,
            "CHANNEL_LAYER_BACKEND": "the app's default for ceiling/buy; core and pubsub for fan-out",
            "CELERY_BROKER_URL": "= REDIS_URL (no worker runs: handlers queue up, as on a web-only node)",
        }
    )
    return shown


def pick_redis_db(index: int | None = None) -> str:
    """The first empty Redis database index from 15 down, or ``index`` when one is given
    (``--redis-db``: several runs side by side must not take each other's): the run owns it
    and flushes it."""
    import redis

    if index is not None:
        return f"redis://{REDIS_AT[0]}:{REDIS_AT[1]}/{index}"
    for index in range(15, 7, -1):
        client = redis.Redis(host=REDIS_AT[0], port=REDIS_AT[1], db=index)
        if client.dbsize() == 0:
            client.close()
            return f"redis://{REDIS_AT[0]}:{REDIS_AT[1]}/{index}"
        client.close()
    raise RuntimeError("no empty Redis database among 8..15 to run in")


def pg_connect(dbname: str):
    import psycopg

    return psycopg.connect(dbname=dbname, autocommit=True, connect_timeout=5, **PG)


def create_database(name: str) -> None:
    with pg_connect("postgres") as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    STARTED.database = name


def drop_database(name: str) -> None:
    with pg_connect("postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- servers ------------------------------------------------------------------------------


class Server:
    def __init__(self, kind: str, env: dict, logs: Path, *, label: str | None = None):
        self.kind, self.env, self.port = kind, env, free_port()
        self.label = label or kind
        self.log = logs / f"{self.label}.log"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        py = sys.executable
        if self.kind == "daphne":
            # -v 0: no access log line per request, like uvicorn's --no-access-log below (the
            # app's own logging is configured by Django's LOGGING either way).
            return [py, "-m", "daphne", "-v", "0", "-b", HOST, "-p", str(self.port), "creatorcommerce.asgi:application"]
        return [
            py,
            "-m",
            "uvicorn",
            "creatorcommerce.asgi:application",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--no-access-log",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ]

    async def __aenter__(self) -> Server:
        self.proc = spawn(self.label, on_core(0, self.command()), self.env, self.log)
        ready = asyncio.ensure_future(wait_http(HOST, self.port, "/livez", timeout=60))
        while not ready.done():
            await asyncio.wait([ready], timeout=0.25)
            if not ready.done() and self.proc.poll() is not None:
                ready.cancel()
                break
        if ready.cancelled() or ready.exception() is not None:
            raise RuntimeError(f"{self.label} did not start; log tail:\n{tail(self.log)}")
        return self

    async def __aexit__(self, *exc) -> None:
        if self.proc is not None:
            STARTED.stop(self.proc.pid)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def log_problems(path: Path) -> list[str]:
    """Tracebacks and errors in a server log (evidence for the report)."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    hits = [line for line in text if re.search(r"Traceback|ERROR|Exception|CRITICAL|error", line)]
    return hits[:20]


# -- scenario 1: framework ceiling ----------------------------------------------------------


async def ceiling(server: Server, seconds: float) -> dict:
    url = f"http://{HOST}:{server.port}/livez"
    if shutil.which("wrk"):
        cmd = on_core(1, ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", "-s", str(BENCH / "wrk_report.lua"), url])
        rc, out = await run_cmd(cmd, timeout=seconds + 30)
        found = re.search(r"BENCH_JSON (\{.*\})", out)
        if rc != 0 or not found:
            raise RuntimeError(f"wrk failed ({rc}): {out[-500:]}")
        raw = json.loads(found.group(1))
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
        return {
            "tool": f"wrk -t1 -c32 -d{seconds}s --latency",
            "rps": float(rps.group(1)) if rps else round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
            "requests": raw["requests"],
            "latency_ms": {p: round(raw[f"{p}_us"] / 1000, 3) for p in ("p50", "p95", "p99")},
            "max_ms": round(raw["max_us"] / 1000, 3),
            "errors": errors,
            "raw": raw,
            "wrk_output": out,
        }
    request = build_request("GET", "/livez", HOST, server.port)
    return await closed_loop(host=HOST, port=server.port, request=request, connections=32, duration=seconds)


# -- scenario 2: buys -------------------------------------------------------------------------


def stock_state(conn, level_ids: list[int]) -> dict:
    """Units available on ``level_ids`` (summed), and the orders with a line on any of them
    by status: orders counted once however many of their lines are there."""
    available = conn.execute(
        "SELECT COALESCE(SUM(available), 0) FROM catalog_stocklevel WHERE id = ANY(%s)", [level_ids]
    ).fetchone()[0]
    rows = conn.execute(
        "SELECT o.status, COUNT(DISTINCT o.id), COALESCE(SUM(l.quantity), 0) FROM orders_orderline l "
        "JOIN orders_order o ON o.id = l.order_id WHERE l.stock_level_id = ANY(%s) GROUP BY o.status",
        [level_ids],
    ).fetchall()
    by_status = {status: {"orders": n, "units": int(units)} for status, n, units in rows}
    return {"available": int(available), "by_status": by_status}


async def settled_state(conn, level_ids: list[int], *, quiet: float = 1.0, limit: float = 60.0) -> dict:
    """The stock state once it has stopped changing for ``quiet`` s (requests the client gave
    up on may still be running in the server)."""
    deadline = time.monotonic() + limit
    state = stock_state(conn, level_ids)
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet)
        again = stock_state(conn, level_ids)
        if again == state and "reserved" not in again["by_status"]:
            return again
        state = again
    return state


async def buys(server: Server, seed: dict, profile: dict, stamp: str, *, lines: int = 1) -> dict:
    """Open-loop buys at each of the profile's rates. ``lines`` 1: the v1 body (one SKU,
    ``rates``); 3: one body with ``lines`` naming three SKUs of one shop, one unit each
    (``rates3``; the buy3 scenario). The stock checks after each rate cover every SKU bought."""
    if lines == 1:
        sku = seed["buy_skus"][server.label]
        skus = [sku]
        body = json.dumps({"sku": sku["code"], "quantity": 1}).encode()
        rates, tag0 = profile["rates"], ""
    else:
        skus = seed["buy3_skus"][server.label]
        body = json.dumps({"lines": [{"sku": s["code"], "quantity": 1} for s in skus]}).encode()
        rates, tag0 = profile["rates3"], "l3"
    level_ids = [s["level_id"] for s in skus]
    initial = sum(s["initial"] for s in skus)
    tokens = seed["buyer_tokens"]

    def maker(tag: str):
        def make(i: int) -> bytes:
            headers = {
                "X-Session-Token": tokens[i % len(tokens)],
                "Idempotency-Key": f"bench-{stamp}-{server.label}-{tag0}{tag}-{i:07d}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            }
            return build_request("POST", "/api/v1/orders/", HOST, server.port, headers=headers, body=body)

        return make

    out: dict = {
        "sku": ",".join(s["code"] for s in skus),
        "lines": lines,
        "initial_stock": initial,
        "rates": [],
    }
    client_ok = unanswered = 0
    label = server.label if lines == 1 else f"{server.label} x{lines}"
    with pg_connect(STARTED.database) as conn:
        warm = await open_loop(
            host=HOST, port=server.port, make_request=maker("warm"), rate=20, duration=WARMUP_BUYS / 20, timeout=20
        )
        client_ok += warm["ok"]
        unanswered += sum(v for k, v in warm["statuses"].items() if not k.isdigit())
        out["warmup"] = {"sent": warm["sent"], "statuses": warm["statuses"]}
        before = await settled_state(conn, level_ids, limit=profile["quiet_limit"])
        for step, rate in enumerate(rates):
            cpu0, wall0, cores0, steal0 = cpu_seconds(server.pid), time.monotonic(), cores_snapshot(), steal_snapshot()
            result = await open_loop(
                host=HOST,
                port=server.port,
                # Idempotency keys unique per step: a rate given twice must buy again, not replay.
                make_request=maker(f"s{step}r{rate}"),
                rate=rate,
                duration=profile["rate_seconds"],
                timeout=profile["request_timeout"],
                # At most 64 requests in flight. Django under ASGI runs every request in a
                # thread of its own, and without a connection pool each one holds a PostgreSQL
                # connection; this machine's PostgreSQL (max_connections 100) is shared.
                # Queued requests still count from their scheduled time: latency stays honest.
                max_connections=64,
            )
            cpu = cpu_seconds(server.pid) - cpu0
            result["server_cpu_pct"] = round(100 * cpu / (time.monotonic() - wall0), 1)
            answered = sum(v for k, v in result["statuses"].items() if k.isdigit())
            result["server_cpu_ms_per_request"] = per_request_ms(cpu, answered)
            result["steal_pct"] = steal_share(steal0, steal_snapshot())
            result["cores_busy_pct"] = cores_busy(cores0, cores_snapshot())
            client_ok += result["statuses"].get("201", 0)
            unanswered += sum(v for k, v in result["statuses"].items() if not k.isdigit())
            after = await settled_state(conn, level_ids, limit=profile["quiet_limit"])
            paid = after["by_status"].get("paid", {"orders": 0, "units": 0})
            sold_total = initial - after["available"]
            held = sum(v["units"] for k, v in after["by_status"].items() if k == "reserved")
            result["check"] = {
                "available": after["available"],
                "units_sold_total": sold_total,
                "paid_orders_total": paid["orders"],
                "paid_units_total": paid["units"],
                "client_201_total": client_ok,
                "client_unanswered_total": unanswered,
                "units_sold_this_rate": before["available"] - after["available"],
                "orders_by_status": after["by_status"],
                # The database agrees with itself: every unit taken is in a paid order
                # (or one still reserved), none more.
                "sold_equals_paid": sold_total == paid["units"] + held,
                # Every 201 the client saw is a paid order; orders beyond those are requests
                # the client stopped waiting for (timeouts), which the server still completed.
                "client_201_consistent": client_ok <= paid["orders"] <= client_ok + unanswered,
                "stock_never_below_zero": after["available"] >= 0 and sold_total <= initial,
            }
            before = after
            out["rates"].append(result)
            print_buy_line(label, result)
    return out


def print_buy_line(label: str, r: dict) -> None:
    lat = r["latency_ms"]
    c = r["check"]
    print(
        f"  {label:<10} offered {r['offered_rps']:>5}/s  achieved {r['ok_rps']:>6}/s  cpu {r['server_cpu_pct']}% "
        f"({r['server_cpu_ms_per_request']} ms/request, steal {r['steal_pct']}%)  "
        f"p50 {fmt_ms(lat['p50'])} p95 {fmt_ms(lat['p95'])} p99 {fmt_ms(lat['p99'])}  {r['statuses']}  "
        f"sold {c['units_sold_total']} = paid {c['paid_units_total']} "
        f"({'ok' if c['sold_equals_paid'] else 'MISMATCH'}), client 201s {c['client_201_total']} "
        f"({'ok' if c['client_201_consistent'] else 'MISMATCH'}), stock {c['available']} "
        f"({'>= 0 ok' if c['stock_never_below_zero'] else 'BELOW ZERO'})",
        flush=True,
    )


# -- scenario 3: pgbench ------------------------------------------------------------------------


async def pgbench(database: str, profile: dict) -> dict:
    with pg_connect(database) as conn:
        conn.execute(
            "CREATE TABLE bench_hot_row (id bigint PRIMARY KEY, available integer NOT NULL CHECK (available >= 0), "
            "version bigint NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("INSERT INTO bench_hot_row (id, available) VALUES (1, 2000000000)")
        conn.execute("VACUUM ANALYZE bench_hot_row")
        fsync = conn.execute("SHOW fsync").fetchone()[0]
        sync_commit = conn.execute("SHOW synchronous_commit").fetchone()[0]
    runs = []
    for clients in profile["pgbench_clients"]:
        seconds = profile["pgbench_seconds"]
        cmd = on_core(
            1,
            [
                "pgbench",
                "-n",
                "-f",
                str(BENCH / "hot_row_pgbench.sql"),
                "-c",
                str(clients),
                "-j",
                "1",
                "-T",
                str(seconds),
                "-h",
                PG["host"],
                "-p",
                str(PG["port"]),
                "-U",
                PG["user"],
                database,
            ],
        )
        env = {**os.environ, "PGPASSWORD": PG["password"]} if PG.get("password") else None
        rc, out = await run_cmd(cmd, env=env, timeout=seconds + 60)
        tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
        latency = re.search(r"latency average = ([\d.]+) ms", out)
        failed = re.search(r"number of failed transactions: (\d+)", out)
        if rc != 0 or not tps:
            raise RuntimeError(f"pgbench failed ({rc}): {out[-800:]}")
        run = {
            "clients": clients,
            "seconds": seconds,
            "tps": float(tps.group(1)),
            "latency_avg_ms": float(latency.group(1)) if latency else None,
            "failed": int(failed.group(1)) if failed else 0,
            "output": out,
        }
        runs.append(run)
        print(f"  pgbench -c {clients} -j 1 -T {seconds}: {run['tps']:.0f} tps, {run['latency_avg_ms']} ms", flush=True)
    return {
        "script": (BENCH / "hot_row_pgbench.sql").read_text(),
        "fsync": fsync,
        "synchronous_commit": sync_commit,
        "runs": runs,
    }


# -- scenarios 4-6: fan-out ---------------------------------------------------------------------


class Clients:
    """WebSocket client processes (bench/wsclients.py) on core 1, driven over pipes."""

    def __init__(self, count: int):
        self.count = count
        self.procs: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> Clients:
        for _ in range(self.count):
            proc = await asyncio.create_subprocess_exec(
                *on_core(1, [sys.executable, str(BENCH / "wsclients.py"), "--host", HOST]),
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                start_new_session=True,
                limit=1 << 26,
            )
            STARTED.add(proc.pid, "wsclients")
            self.procs.append(proc)
        await asyncio.gather(*(self._read(p, 30) for p in self.procs))
        return self

    async def __aexit__(self, *exc) -> None:
        for proc in self.procs:
            with contextlib.suppress(Exception):
                proc.stdin.write(b'{"cmd": "exit"}\n')
                await proc.stdin.drain()
        for proc in self.procs:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
            STARTED.stop(proc.pid, timeout=1)

    @staticmethod
    async def _read(proc, timeout: float) -> dict:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("a WebSocket client process exited")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"WebSocket client: {answer['error']}")
        return answer

    async def each(self, commands: list[dict | None], timeout: float = 180) -> list[dict]:
        """Send commands[i] to process i (None: skip it) and gather the answers."""
        live = [(p, c) for p, c in zip(self.procs, commands, strict=True) if c is not None]
        for proc, command in live:
            proc.stdin.write((json.dumps(command) + "\n").encode())
            await proc.stdin.drain()
        return await asyncio.gather(*(self._read(p, timeout) for p, _ in live))

    async def all(self, command: dict, timeout: float = 180) -> list[dict]:
        return await self.each([command] * self.count, timeout)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0.0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cores_snapshot() -> dict[str, tuple[int, int]]:
    """Per core: (busy, total) jiffies from /proc/stat."""
    out = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("cpu") and line[3:4].isdigit():
                name, *values = line.split()
                ticks = [int(v) for v in values]
                idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
                out[name] = (sum(ticks) - idle, sum(ticks))
    return out


def per_request_ms(cpu_seconds_used: float, requests) -> float | None:
    """Server CPU time per request: on a shared VM, where wall-clock rates swing with what
    else runs on the host, the cost per request is the steadier figure."""
    return round(1000 * cpu_seconds_used / requests, 3) if requests else None


def steal_snapshot() -> tuple[int, int]:
    """(steal, total) jiffies of the whole machine, from /proc/stat."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return (ticks[7] if len(ticks) > 7 else 0), sum(ticks)
    return 0, 0


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """% of the machine's CPU time the hypervisor gave to someone else in between."""
    total = after[1] - before[1]
    return round(100 * (after[0] - before[0]) / total, 1) if total > 0 else None


def cores_busy(before: dict, after: dict) -> dict[str, float]:
    """Busy % of each core between two snapshots (everything on the machine, not just ours)."""
    busy = {}
    for name, (b1, t1) in after.items():
        b0, t0 = before.get(name, (0, 0))
        busy[name] = round(100 * (b1 - b0) / (t1 - t0), 1) if t1 > t0 else None
    return busy


async def stable_value(conn, level_id: int, *, quiet: float = 1.0, limit: float = 30.0) -> int:
    deadline = time.monotonic() + limit
    query = "SELECT available FROM catalog_stocklevel WHERE id = %s"
    value = conn.execute(query, [level_id]).fetchone()[0]
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet)
        again = conn.execute(query, [level_id]).fetchone()[0]
        if again == value:
            return value
        value = again
    return value


async def converge(clients: Clients, final, *, limit: float) -> float | None:
    """When every open viewer holds ``final`` (monotonic time), or None after ``limit`` s."""
    deadline = time.monotonic() + limit
    while True:
        peeks = await clients.all({"cmd": "peek"}, timeout=30)
        if all(set(p["last"]) <= {str(final)} for p in peeks):
            return time.monotonic()
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(0.1)


def split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


async def drive_stock_api(port: int, seed: dict, profile: dict) -> dict:
    """The stream's stock changes: POST /api/v1/skus/<code>/stock/ {"add": -1} as the creator,
    open loop at the given cadence. Bounded: changes_per_s * change_seconds requests."""
    body = b'{"add": -1}'
    path = f"/api/v1/skus/{seed['fan']['code']}/stock/"
    headers = {"X-Session-Token": seed["creator_token"], "Content-Type": "application/json"}
    request = build_request("POST", path, HOST, port, headers=headers, body=body)
    answered: list[int] = []

    def keep(i: int, response) -> None:
        if response.status == 200:
            answered.append(json.loads(response.body)["available"])

    result = await open_loop(
        host=HOST,
        port=port,
        make_request=lambda i: request,
        rate=profile["changes_per_s"],
        duration=profile["change_seconds"],
        timeout=10,
        initial_connections=2,
        max_connections=8,
        on_response=keep,
    )
    result.pop("distribution_ms", None)
    # Every change answered: the lowest count answered is the final one (each takes one).
    result["final"] = min(answered) if answered and len(answered) == result["sent"] else None
    return result


async def drive_redis(redis_url: str, channel: str, sku: str, start: int, profile: dict) -> dict:
    """The baseline's driver: the same cadence, publishing ``stock`` messages with ``ts``."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    count = max(1, round(profile["changes_per_s"] * profile["change_seconds"]))
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.05
    value = start
    try:
        for i in range(count):
            delay = t0 + i / profile["changes_per_s"] - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            value -= 1
            message = {"type": "stock", "stock": {sku: value}, "seq": i + 1, "ts": time.time()}
            await client.publish(channel, json.dumps(message, separators=(",", ":")))
    finally:
        await client.aclose()
    return {"sent": count, "final": value}


def summarize_step(n: int, reports: list[dict], final, *, extra: dict) -> dict:
    samples = [x for r in reports for x in r["samples"]]
    open_now = sum(r["open"] for r in reports)
    on_final = sum(r["last"].get(str(final), 0) for r in reports)
    per_viewer: dict[int, int] = {}
    for r in reports:
        for k, v in r["messages_per_viewer"].items():
            per_viewer[int(k)] = per_viewer.get(int(k), 0) + v
    viewers = sum(per_viewer.values()) or 1
    closed: dict[str, int] = {}
    for r in reports:
        for k, v in r["closed"].items():
            closed[k] = closed.get(k, 0) + v
    closed_total: dict[str, int] = {}
    for r in reports:
        for k, v in r.get("closed_total", {}).items():
            closed_total[k] = closed_total.get(k, 0) + v
    lasts: dict[str, int] = {}
    for r in reports:
        for k, v in r["last"].items():
            lasts[k] = lasts.get(k, 0) + v
    sizes = [r["message_bytes"] for r in reports if r["message_bytes"]]
    return {
        "viewers": n,
        "open_at_end": open_now,
        "messages": len(samples),
        "messages_per_viewer_mean": round(sum(k * v for k, v in per_viewer.items()) / viewers, 2),
        "messages_per_viewer_min": min(per_viewer) if per_viewer else 0,
        "message_bytes": round(sum(sizes) / len(sizes), 1) if sizes else None,
        "latency_ms": percentiles(samples),
        "max_ms": round(max(samples), 3) if samples else None,
        "distribution_ms": distribution(samples),
        "final_value": final,
        "on_final": on_final,
        "final_share": round(on_final / n, 4) if n else None,
        "last_values": dict(sorted(lasts.items(), key=lambda kv: -kv[1])[:10]),
        "closed_during_run": closed,
        "closed_by_server_since_connect": closed_total,
        "other_messages": {k: v for r in reports for k, v in r["other_messages"].items()},
        **extra,
    }


async def fanout(
    *, label: str, seed: dict, profile: dict, port: int, pid: int, mode: str, redis_url: str, channel: str | None = None
) -> dict:
    """Viewers in steps (e.g. 500, 1,000, 2,000 held at once), a run of stock changes at
    each step; latency = receipt - ts, share on the final value, RSS per idle connection."""
    steps = profile["viewers"]
    most = max(steps)
    processes = max(1, math.ceil(most / profile["per_process"]))
    fan = seed["fan"]
    app = mode == "app"
    path = f"/ws/streams/{fan['stream_id']}/" if app else "/"
    out: dict = {"label": label, "client_processes": processes, "steps": []}
    async with Clients(processes) as clients:
        warm = 10
        if app:
            shares = split(most, processes)
            shares[0] += warm
            fetched = await clients.each(
                [{"cmd": "tokens", "port": port, "stream": fan["stream_id"], "n": k, "concurrency": 4} for k in shares],
                timeout=300,
            )
            out["tokens"] = {
                "fetched": sum(f["tokens"] for f in fetched),
                "errors": [f["errors"] for f in fetched if f["errors"]],
                "seconds": max(f["seconds"] for f in fetched),
            }
            print(f"  {label}: {out['tokens']['fetched']} viewer tokens in {out['tokens']['seconds']}s", flush=True)
        connect = {"cmd": "connect", "port": port, "path": path, "tokens": app, "sku": fan["code"], "concurrency": 8}
        # Warm the WebSocket path (imports, first queries), then measure memory from here.
        await clients.each([{**connect, "n": warm, "hold": False}] + [None] * (processes - 1), timeout=120)
        await asyncio.sleep(1.0)
        rss0 = rss_kb(pid)
        held = [0] * processes
        current_value = fan["initial"]
        for n in steps:
            target = split(n, processes)
            t0 = time.monotonic()
            answers = await clients.each(
                [{**connect, "n": t - h, "hold": True} if t > h else None for t, h in zip(target, held, strict=True)],
                timeout=300,
            )
            connect_s = round(time.monotonic() - t0, 2)
            failed: dict[str, int] = {}
            for a in answers:
                for k, v in a["failed"].items():
                    failed[k] = failed.get(k, 0) + v
            held = target
            await asyncio.sleep(1.0)
            rss = rss_kb(pid)
            # Every step at the base cadence; the largest one again above the contract's
            # pushes a second (the sell-out overload), reported as a row of its own.
            cadences = [profile["changes_per_s"]]
            if n == most and profile.get("overload_changes_per_s"):
                cadences.append(profile["overload_changes_per_s"])
            for cadence in cadences:
                paced = {**profile, "changes_per_s": cadence}
                opened = sum(r["open"] for r in await clients.all({"cmd": "record"}))
                cpu0, wall0, cores0 = cpu_seconds(pid), time.monotonic(), cores_snapshot()
                if app:
                    driver = await drive_stock_api(port, seed, paced)
                    final = driver["final"]
                    if final is None:
                        # Changes the driver gave up on may still commit: the final value is
                        # the one the row settles on.
                        with pg_connect(STARTED.database) as conn:
                            final = await stable_value(conn, fan["level_id"], limit=profile["quiet_limit"])
                else:
                    driver = await drive_redis(redis_url, channel, fan["code"], current_value, paced)
                    current_value = final = driver["final"]
                driven_at = time.monotonic()
                converged = await converge(clients, final, limit=profile["converge_limit"])
                await asyncio.sleep(profile["settle_seconds"])  # stragglers still count in the latency
                server_cpu = round(100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0), 1)
                cores = cores_busy(cores0, cores_snapshot())
                converged_s = round(converged - driven_at, 2) if converged is not None else None
                reports = await clients.all({"cmd": "report"}, timeout=120)
                step = summarize_step(
                    n,
                    reports,
                    final,
                    extra={
                        "changes_per_s": cadence,
                        "connected_before_run": opened,
                        "connect_failed": failed,
                        "connect_seconds": connect_s,
                        "rss_kb_before_connect": rss0,
                        "rss_kb_connected": rss,
                        "rss_kb_per_connection": round((rss - rss0) / n, 1) if rss and rss0 else None,
                        "driver": driver,
                        "server_cpu_pct": server_cpu,
                        "cores_busy_pct": cores,
                        "all_on_final_after_s": converged_s,
                    },
                )
                out["steps"].append(step)
                print_fan_line(label, step)
        await clients.all({"cmd": "close_all"})
    return out


def print_fan_line(label: str, s: dict) -> None:
    lat = s["latency_ms"]
    print(
        f"  {label:<15} viewers {s['viewers']:>5} (open {s['open_at_end']:>5})  "
        f"{fmt_num(s['changes_per_s'])} changes/s  msgs {s['messages']:>7}  "
        f"p50 {fmt_ms(lat['p50'])} p95 {fmt_ms(lat['p95'])} p99 {fmt_ms(lat['p99'])}  "
        f"on final {s['on_final']}/{s['viewers']} (all after {s['all_on_final_after_s']}s)  "
        f"cpu {s['server_cpu_pct']}%  {fmt_kb(s['rss_kb_per_connection'])}/conn  "
        f"connect {s['connect_seconds']}s"
        + (f"  failed {s['connect_failed']}" if s["connect_failed"] else "")
        + (f"  closed {s['closed_during_run']}" if s["closed_during_run"] else ""),
        flush=True,
    )


# -- report -----------------------------------------------------------------------------------


def fmt_ms(v) -> str:
    if v is None:
        return "-"
    if v == math.inf:
        return "timeout"
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def fmt_num(v) -> str:
    return "-" if v is None else f"{v:g}"


def fmt_kb(v) -> str:
    return "-" if v is None else f"{v:.1f} KB"


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def best_buy_rate(buy: dict) -> float | None:
    rates = [r["ok_rps"] for r in buy.get("rates", [])]
    return max(rates) if rates else None


def buy_at(buy: dict, offered: float) -> dict | None:
    return next((r for r in buy.get("rates", []) if r["offered_rps"] == offered), None)


def step_key(s: dict) -> tuple[int, float]:
    """A fan-out step is its viewer count and cadence; the baseline's step with the same key
    is the one it is compared with."""
    return s["viewers"], s["changes_per_s"]


def targets(results: dict) -> list[list]:
    """Issue 5's targets against this run's figures: goals for the code, reported, never
    asserted."""
    rows: list[list] = []
    sc = results["scenarios"]
    for server, buy in sc.get("buy", {}).items():
        at200 = buy_at(buy, 200)
        if at200:
            p99 = at200["latency_ms"]["p99"]
            ok = at200["check"]["stock_never_below_zero"] and at200["check"]["sold_equals_paid"]
            met = p99 is not None and p99 < 50 and ok and at200["ok_rps"] >= 190
            rows.append([f"buy p99 < 50 ms at 200/s, {server}", f"p99 {fmt_ms(p99)} ms, {at200['ok_rps']}/s", met])
        best, ceil = best_buy_rate(buy), sc.get("ceiling", {}).get(server)
        if best and ceil:
            capped = best >= 0.95 * max(r["offered_rps"] for r in buy["rates"])
            value = f"{best} / {ceil['rps']:.0f}" + (" (capped by the offered rates)" if capped else "")
            rows.append([f"buys/s >= 1/2 ceiling, {server}", value, best >= ceil["rps"] / 2])
    base = {step_key(s): s for s in sc.get("baseline", {}).get("steps", [])}
    for layer, fan in sc.get("fanout", {}).items():
        if not fan["steps"]:
            continue
        n = max(s["viewers"] for s in fan["steps"])
        # The largest step at each cadence: the profile's (the contract's at most 10 pushes a
        # second) and, where the run has one, the overload above it.
        for top in sorted((s for s in fan["steps"] if s["viewers"] == n), key=lambda s: s["changes_per_s"]):
            p99, at = top["latency_ms"]["p99"], f"{n}, {fmt_num(top['changes_per_s'])} changes/s"
            rows.append([f"fan-out p99 < 100 ms at {at}, {layer}", f"{fmt_ms(p99)} ms", p99 is not None and p99 < 100])
            b = base.get(step_key(top))
            if b and b["latency_ms"]["p99"] and p99:
                ratio = p99 / b["latency_ms"]["p99"]
                rows.append([f"fan-out p99 <= 2x baseline at {at}, {layer}", f"{ratio:.1f}x", ratio <= 2])
        top = next(s for s in fan["steps"] if s["viewers"] == n)
        every = all(s["on_final"] == s["viewers"] for s in fan["steps"])
        rows.append(
            [
                f"every viewer on the final value, {layer}",
                ", ".join(f"{s['on_final']}/{s['viewers']}" for s in fan["steps"]),
                every,
            ]
        )
        kb = top["rss_kb_per_connection"]
        rows.append([f"< 100 KB per idle viewer, {layer}", f"{kb} KB", kb is not None and kb < 100])
    return [[name, value, "met" if met else "MISSED"] for name, value, met in rows]


def ratios(results: dict) -> dict:
    out: dict = {}
    sc = results["scenarios"]
    ceil = sc.get("ceiling", {})
    buy = sc.get("buy", {})
    pgb = sc.get("pgbench", {}).get("runs", [])
    tps1 = next((r["tps"] for r in pgb if r["clients"] == 1), None)
    for server in SERVERS:
        best = best_buy_rate(buy.get(server, {}))
        if best and server in ceil:
            out[f"buy/ceiling {server}"] = round(best / ceil[server]["rps"], 3)
        if best and tps1:
            out[f"buy/pgbench(c1) {server}"] = round(best / tps1, 4)
    for server in SERVERS:
        # The same ratio from server CPU per request (the ceiling's ÷ the buy's, at the rate
        # that answered the most: idle time weighs least there): what the throughput ratio
        # would be if both were CPU-bound on a core of their own.
        rates = [r for r in buy.get(server, {}).get("rates", []) if r.get("server_cpu_ms_per_request")]
        busiest = max(rates, key=lambda r: sum(v for k, v in r["statuses"].items() if k.isdigit()), default=None)
        base = ceil.get(server, {}).get("server_cpu_ms_per_request")
        if busiest and base:
            out[f"buy/ceiling by server CPU {server}"] = round(base / busiest["server_cpu_ms_per_request"], 3)
    if "daphne" in ceil and "uvicorn" in ceil:
        out["daphne/uvicorn ceiling req/s"] = round(ceil["daphne"]["rps"] / ceil["uvicorn"]["rps"], 3)
    if buy.get("daphne") and buy.get("uvicorn"):
        bd, bu = best_buy_rate(buy["daphne"]), best_buy_rate(buy["uvicorn"])
        if bd and bu:
            out["daphne/uvicorn max buys/s"] = round(bd / bu, 3)
        for r in buy["daphne"]["rates"]:
            other = buy_at(buy["uvicorn"], r["offered_rps"])
            p_d, p_u = r["latency_ms"]["p99"], other and other["latency_ms"]["p99"]
            if other and p_d and p_u and math.isfinite(p_d) and math.isfinite(p_u):
                out[f"daphne/uvicorn buy p99 @{r['offered_rps']}/s"] = round(p_d / p_u, 3)
    base = {step_key(s): s for s in sc.get("baseline", {}).get("steps", [])}
    for layer, fan in sc.get("fanout", {}).items():
        for s in fan["steps"]:
            b = base.get(step_key(s))
            if b and b["latency_ms"]["p99"] and s["latency_ms"]["p99"]:
                out[f"fanout/baseline p99 {layer} @{s['viewers']}x{fmt_num(s['changes_per_s'])}/s"] = round(
                    s["latency_ms"]["p99"] / b["latency_ms"]["p99"], 2
                )
    return out


def report(results: dict) -> str:
    sc = results["scenarios"]
    parts = []
    m = results["machine"]
    parts.append(
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gb']} GB; Python {m['versions']['python']}, "
        f"Django {m['versions']['django']}, daphne {m['versions']['daphne']}, uvicorn {m['versions']['uvicorn']}, "
        f"channels-redis {m['versions']['channels-redis']}, {m['versions'].get('postgresql', 'PostgreSQL ?')}, "
        f"Redis {m['versions'].get('redis', '?')}; "
        f"taskset: {'server core 0, load core 1' if m['taskset'] else 'not used'}"
    )
    if "ceiling" in sc:
        rows = [
            [
                s,
                r["tool"],
                f"{r['rps']:.0f}",
                fmt_ms(r["latency_ms"]["p50"]),
                fmt_ms(r["latency_ms"]["p95"]),
                fmt_ms(r["latency_ms"]["p99"]),
                r["errors"],
                fmt_num(r.get("server_cpu_ms_per_request")),
                fmt_num(r.get("steal_pct")),
            ]
            for s, r in sc["ceiling"].items()
        ]
        parts.append(
            "1. Framework ceiling: GET /livez\n"
            + table(
                ["server", "load", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "srv cpu ms/req", "steal %"], rows
            )
        )
    for scenario, title in (
        ("buy", "2. Buy while a drop sells out: POST /api/v1/orders/, open loop, latency from the scheduled send"),
        ("buy3", f"2b. The {LINES_PER_BUY3}-line buy: one POST /api/v1/orders/ with {LINES_PER_BUY3} SKUs of one shop"),
    ):
        if scenario not in sc:
            continue
        rows = []
        for s, b in sc[scenario].items():
            for r in b["rates"]:
                c = r["check"]
                errors = {k: v for k, v in r["statuses"].items() if k != "201"}
                matched = "ok" if c["sold_equals_paid"] and c["client_201_consistent"] else "NO"
                rows.append(
                    [
                        s,
                        r["offered_rps"],
                        r["sent"],
                        f"{r['ok_rps']:.1f}",
                        fmt_ms(r["latency_ms"]["p50"]),
                        fmt_ms(r["latency_ms"]["p95"]),
                        fmt_ms(r["latency_ms"]["p99"]),
                        cpu_cell(r),
                        fmt_num(r.get("server_cpu_ms_per_request")),
                        ",".join(f"{k}:{v}" for k, v in errors.items()) or "none",
                        f"{c['units_sold_total']}={c['paid_units_total']} {matched}",
                        f"{c['available']} {'ok' if c['stock_never_below_zero'] else 'NO'}",
                    ]
                )
        parts.append(
            title
            + "\n"
            + table(
                [
                    "server",
                    "offered/s",
                    "sent",
                    "buys/s",
                    "p50 ms",
                    "p95 ms",
                    "p99 ms",
                    "cpu% srv/c0/c1",
                    "srv cpu ms/req",
                    "errors",
                    "sold=paid",
                    "stock>=0",
                ],
                rows,
            )
        )
    if "pgbench" in sc:
        rows = [
            [f"-c {r['clients']} -j 1 -T {r['seconds']}", f"{r['tps']:.0f}", r["latency_avg_ms"], r["failed"]]
            for r in sc["pgbench"]["runs"]
        ]
        parts.append(
            f"3. Database limit: pgbench, the buy's conditional hot-row UPDATE (fsync={sc['pgbench']['fsync']})\n"
            + table(["pgbench", "tps", "avg ms", "failed"], rows)
        )
    fan_rows = []
    for layer, fan in sc.get("fanout", {}).items():
        for s in fan["steps"]:
            fan_rows.append(fan_row(f"daphne + {layer}", s))
    for s in sc.get("baseline", {}).get("steps", []):
        fan_rows.append(fan_row("baseline", s))
    if fan_rows:
        parts.append(
            "4-6. Fan-out: stock changes -> every viewer; latency = receipt - server commit (baseline: send) time\n"
            + table(
                [
                    "server",
                    "viewers",
                    "changes/s",
                    "open",
                    "msgs/viewer",
                    "p50 ms",
                    "p95 ms",
                    "p99 ms",
                    "max ms",
                    "on final",
                    "all final after s",
                    "cpu% srv/c0/c1",
                    "KB/conn",
                    "connect s",
                ],
                fan_rows,
            )
        )
    if results.get("ratios"):
        parts.append("Ratios\n" + table(["ratio", "value"], [[k, v] for k, v in results["ratios"].items()]))
    if results.get("targets"):
        parts.append(
            "Targets (issue 5; goals, not assertions)\n" + table(["target", "this run", ""], results["targets"])
        )
    if results.get("problems"):
        parts.append("Problems seen\n" + "\n".join(f"- {p}" for p in results["problems"]))
    if results.get("error"):
        parts.append(f"The run stopped early: {results['error'][:2000]}")
    return "\n\n".join(parts)


def cpu_cell(r: dict) -> str:
    """Server process CPU %, then how busy core 0 and core 1 were (everything on them)."""
    cores = r.get("cores_busy_pct") or {}
    return "/".join(
        f"{v:.0f}" if isinstance(v, (int, float)) else "-"
        for v in (r.get("server_cpu_pct"), cores.get("cpu0"), cores.get("cpu1"))
    )


def fan_row(name: str, s: dict) -> list:
    lat = s["latency_ms"]
    return [
        name,
        s["viewers"],
        fmt_num(s["changes_per_s"]),
        s["open_at_end"],
        s["messages_per_viewer_mean"],
        fmt_ms(lat["p50"]),
        fmt_ms(lat["p95"]),
        fmt_ms(lat["p99"]),
        fmt_ms(s["max_ms"]),
        f"{s['on_final']}/{s['viewers']}",
        "never" if s["all_on_final_after_s"] is None else s["all_on_final_after_s"],
        cpu_cell(s),
        "-" if s["rss_kb_per_connection"] is None else s["rss_kb_per_connection"],
        s["connect_seconds"],
    ]


def problems(results: dict) -> list[str]:
    """Plain observations that need a look (not assertions: the run never fails on them)."""
    found = []
    sc = results["scenarios"]
    for scenario in ("buy", "buy3"):
        for server, b in sc.get(scenario, {}).items():
            for r in b["rates"]:
                c = r["check"]
                bad = {k: v for k, v in r["statuses"].items() if k != "201"}
                if bad:
                    found.append(
                        f"{scenario} {server} @{r['offered_rps']}/s: non-201 answers {bad} {r['sample_bodies']}"
                    )
                if not (c["sold_equals_paid"] and c["client_201_consistent"] and c["stock_never_below_zero"]):
                    found.append(f"{scenario} {server} @{r['offered_rps']}/s: stock check failed {c}")
    for layer, fan in sc.get("fanout", {}).items():
        for s in fan["steps"]:
            at = f"@{s['viewers']}x{fmt_num(s['changes_per_s'])}/s"
            if s["on_final"] < s["viewers"]:
                found.append(
                    f"fan-out {layer} {at}: {s['viewers'] - s['on_final']} viewers not on the final value "
                    f"{s['final_value']} (last values seen: {s['last_values']}; closed: {s['closed_during_run']}; "
                    f"connect failures: {s['connect_failed']})"
                )
            if s["closed_by_server_since_connect"] and layer != "baseline":
                found.append(
                    f"fan-out {layer} {at}: the server closed viewer sockets since they connected "
                    f"(close codes: {s['closed_by_server_since_connect']})"
                )
            if s["driver"]["statuses"] != {"200": s["driver"]["sent"]}:
                found.append(f"fan-out {layer} {at}: stock API answers {s['driver']['statuses']}")
    for name, lines in results.get("server_log_problems", {}).items():
        if lines:
            found.append(f"{name} log: {len(lines)} error lines, first: {lines[0][:300]}")
    return found


def machine(redis_url: str, database: str) -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    versions = {
        "python": platform.python_version(),
        **{
            d: version(d)
            for d in (
                "django",
                "daphne",
                "uvicorn",
                "channels",
                "channels-redis",
                "websockets",
                "uvloop",
                "httptools",
                "twisted",
                "psycopg",
                "psycopg-pool",
            )
        },
    }
    with contextlib.suppress(Exception), pg_connect(database) as conn:
        versions["postgresql"] = "PostgreSQL " + conn.execute("SHOW server_version").fetchone()[0]
    with contextlib.suppress(Exception):
        import redis

        versions["redis-py"] = version("redis")
        versions["redis"] = redis.Redis.from_url(redis_url).info("server")["redis_version"]
    if shutil.which("wrk"):
        with contextlib.suppress(Exception):
            versions["wrk"] = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
    if shutil.which("pgbench"):
        versions["pgbench"] = subprocess.run(["pgbench", "--version"], capture_output=True, text=True).stdout.strip()
    code = {}
    with contextlib.suppress(Exception):
        code["commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=APP, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain"], cwd=APP, capture_output=True, text=True, timeout=10
        ).stdout.splitlines()
        code["uncommitted_files"] = len(changed)
        code["tree"] = str(APP)
    return {
        "code": code,
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "taskset": have_taskset(),
        "open_files_limit": __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)[0],
        "versions": versions,
    }


# -- main ---------------------------------------------------------------------------------------


async def run_all(args, profile: dict, stamp: str, results: dict, logs: Path) -> None:
    only = set(args.only)
    database = STARTED.database
    redis_url = STARTED.redis_url
    base = results["_base_env"]

    print(f"[setup] database {database}, Redis {redis_url}", flush=True)
    t0 = time.monotonic()
    rc, out = await run_cmd(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        env=bench_env(base, database=database, redis_url=redis_url),
        timeout=300,
    )
    if rc != 0:
        raise RuntimeError(f"migrate failed:\n{out[-2000:]}")
    planned = WARMUP_BUYS + sum(round(r * profile["rate_seconds"]) for r in profile["rates"])
    # buy3 takes one unit of each of its three SKUs per buy.
    planned3 = WARMUP_BUYS + sum(round(r * profile["rate_seconds"]) for r in profile["rates3"])
    buy3 = [a for s in args.servers for a in ("--buy3-sku", f"{s}={planned3}")] if "buy3" in only else []
    seed_file = logs / "seed.json"
    fan_stock = 1_000_000
    rc, out = await run_cmd(
        [
            sys.executable,
            str(BENCH / "seed.py"),
            "--buyers",
            str(profile["buyers"]),
            "--fan-stock",
            str(fan_stock),
            "--out",
            str(seed_file),
            *[a for s in args.servers for a in ("--buy-sku", f"{s}={planned}")],
            *buy3,
        ],
        env=bench_env(base, database=database, redis_url=redis_url),
        timeout=600,
    )
    if rc != 0:
        raise RuntimeError(f"seed failed:\n{out[-3000:]}")
    seed = json.loads(seed_file.read_text())
    results["setup"] = {
        "migrate_and_seed_seconds": round(time.monotonic() - t0, 1),
        "buyers": len(seed["buyer_tokens"]),
        "stock_per_buy_sku": planned,
        "stock_per_buy3_sku": planned3 if buy3 else None,
        "fan_stock": fan_stock,
        "seed_seconds": seed["seconds"],
    }
    print(
        f"[setup] migrated and seeded in {results['setup']['migrate_and_seed_seconds']}s "
        f"({len(seed['buyer_tokens'])} buyers, {planned} units per buy SKU)",
        flush=True,
    )
    sc = results["scenarios"]
    results["server_log_problems"] = {}
    results["load_average"] = {}

    def note_load(name: str) -> None:
        """The 1-minute load average when a scenario starts: other work on the machine shows here."""
        results["load_average"][name] = round(os.getloadavg()[0], 2)

    if only & {"ceiling", "buy", "buy3"}:
        for kind in args.servers:
            env = bench_env(base, database=database, redis_url=redis_url)
            note_load(kind)
            async with Server(kind, env, logs) as server:
                print(f"[{kind}] pid {server.pid}, port {server.port}", flush=True)
                warm = build_request("GET", "/livez", HOST, server.port)
                conn = Connection(HOST, server.port)
                for _ in range(200):
                    with contextlib.suppress(HttpError):
                        await conn.request(warm)
                conn.close()
                if "ceiling" in only:
                    cpu0, steal0 = cpu_seconds(server.pid), steal_snapshot()
                    r = await ceiling(server, profile["ceiling_seconds"])
                    r["server_cpu_ms_per_request"] = per_request_ms(cpu_seconds(server.pid) - cpu0, r.get("requests"))
                    r["steal_pct"] = steal_share(steal0, steal_snapshot())
                    sc.setdefault("ceiling", {})[kind] = r
                    print(
                        f"  ceiling {kind}: {r['rps']:.0f} req/s, p50 {fmt_ms(r['latency_ms']['p50'])} "
                        f"p95 {fmt_ms(r['latency_ms']['p95'])} p99 {fmt_ms(r['latency_ms']['p99'])} ms, "
                        f"errors {r['errors']}, server CPU {r['server_cpu_ms_per_request']} ms/request, "
                        f"steal {r['steal_pct']}%",
                        flush=True,
                    )
                if "buy" in only:
                    sc.setdefault("buy", {})[kind] = await buys(server, seed, profile, stamp)
                if "buy3" in only:
                    # In the same process, after the single-SKU buys (which it does not disturb).
                    sc.setdefault("buy3", {})[kind] = await buys(server, seed, profile, stamp, lines=LINES_PER_BUY3)
                sc.setdefault("servers", {})[kind] = {"rss_kb_at_end": rss_kb(server.pid), "command": server.command()}
            results["server_log_problems"][kind] = log_problems(server.log)

    if "pgbench" in only:
        if shutil.which("pgbench"):
            print("[pgbench]", flush=True)
            note_load("pgbench")
            sc["pgbench"] = await pgbench(database, profile)
        else:
            sc["pgbench"] = {"skipped": "pgbench not installed", "runs": []}

    if "fanout" in only:
        for layer in args.layers:
            env = bench_env(base, database=database, redis_url=redis_url, layer=layer)
            label = f"daphne-{layer}"
            note_load(label)
            async with Server("daphne", env, logs, label=label) as server:
                print(f"[fan-out {label}] pid {server.pid}, port {server.port}", flush=True)
                sc.setdefault("fanout", {})[layer] = await fanout(
                    label=label,
                    seed=seed,
                    profile=profile,
                    port=server.port,
                    pid=server.pid,
                    mode="app",
                    redis_url=redis_url,
                )
            results["server_log_problems"][label] = log_problems(server.log)

    if "baseline" in only:
        port = free_port()
        channel = f"cc_bench_{stamp}:stock"
        cmd = [
            sys.executable,
            str(BENCH / "baseline_ws.py"),
            "--port",
            str(port),
            "--redis",
            redis_url,
            "--channel",
            channel,
            "--sku",
            seed["fan"]["code"],
            "--stock",
            str(fan_stock),
        ]
        log = logs / "baseline.log"
        note_load("baseline")
        proc = spawn("baseline", on_core(0, cmd), bench_env(base, database=database, redis_url=redis_url), log)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with socket.create_connection((HOST, port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError(f"baseline server did not start:\n{tail(log)}") from None
                    await asyncio.sleep(0.2)
            print(f"[baseline] pid {proc.pid}, port {port}", flush=True)
            sc["baseline"] = await fanout(
                label="baseline",
                seed={**seed, "fan": {**seed["fan"], "initial": fan_stock}},
                profile=profile,
                port=port,
                pid=proc.pid,
                mode="baseline",
                redis_url=redis_url,
                channel=channel,
            )
        finally:
            STARTED.stop(proc.pid)
        results["server_log_problems"]["baseline"] = log_problems(log)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer, shorter runs (under 2 minutes)")
    mode.add_argument("--smoke", action="store_true", help="tiny counts, end to end (for the test suite)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--servers", default=",".join(SERVERS), help="for ceiling and buy: daphne,uvicorn")
    parser.add_argument("--layers", default=",".join(LAYERS), help="for fanout: core,pubsub")
    parser.add_argument("--rates", help="buys/s offered, comma-separated (overrides the profile)")
    parser.add_argument("--rates3", help="buy3: 3-line buys/s offered, comma-separated (overrides the profile)")
    parser.add_argument(
        "--tree",
        help="run the servers, migrations and seed from this checkout of the project (default: this one)",
    )
    parser.add_argument(
        "--redis-db",
        type=int,
        choices=range(16),
        metavar="0-15",
        default=int(os.environ["BENCH_REDIS_DB"]) if os.environ.get("BENCH_REDIS_DB") else None,
        help="the Redis database index to use and flush afterwards (default: BENCH_REDIS_DB, else the first "
        "empty one from 15 down)",
    )
    parser.add_argument("--viewers", help="viewer steps, comma-separated (overrides the profile)")
    parser.add_argument(
        "--changes-per-s",
        type=float,
        help="fan-out: stock changes a second (overrides the profile; the contract pushes at most 10 a second)",
    )
    parser.add_argument(
        "--overload-changes-per-s",
        type=float,
        help="fan-out: a second run of the largest step at this cadence (0: none; default from the profile)",
    )
    parser.add_argument("--out", help="JSON path (default bench/results/<timestamp>.json)")
    args = parser.parse_args()
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    args.layers = [s.strip() for s in args.layers.split(",") if s.strip()]
    for name, values, allowed in (
        ("--only", args.only, SCENARIOS),
        ("--servers", args.servers, SERVERS),
        ("--layers", args.layers, LAYERS),
    ):
        unknown = set(values) - set(allowed)
        if unknown:
            parser.error(f"{name}: unknown {sorted(unknown)}; choose from {', '.join(allowed)}")
    profile_name = "smoke" if args.smoke else "quick" if args.quick else "default"
    profile = dict(PROFILES[profile_name])
    if args.rates:
        profile["rates"] = [float(x) for x in args.rates.split(",")]
    if args.rates3:
        profile["rates3"] = [float(x) for x in args.rates3.split(",")]
    if args.tree:
        global APP
        APP = Path(args.tree).resolve()
        if not (APP / "manage.py").is_file():
            parser.error(f"--tree: no manage.py in {APP}")
    if args.viewers:
        profile["viewers"] = [int(x) for x in args.viewers.split(",")]
    if args.changes_per_s is not None:
        if args.changes_per_s <= 0:
            parser.error("--changes-per-s must be positive")
        profile["changes_per_s"] = args.changes_per_s
    if args.overload_changes_per_s is not None:
        if args.overload_changes_per_s < 0:
            parser.error("--overload-changes-per-s must be 0 or positive")
        profile["overload_changes_per_s"] = args.overload_changes_per_s or None

    if have_taskset():
        os.sched_setaffinity(0, {1})  # this process is a load generator: core 1
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    results_dir = BENCH / "results"
    out_path = Path(args.out).resolve() if args.out else results_dir / f"{stamp}.json"
    logs = out_path.with_name(out_path.stem + "-logs")
    logs.mkdir(parents=True, exist_ok=True)
    base = production_like()
    results: dict = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "profile": profile_name,
        "parameters": profile,
        "scenarios_run": args.only,
        "servers": args.servers,
        "layers": args.layers,
        "scenarios": {},
        "_base_env": base,
    }
    t_start = time.monotonic()
    status = 0
    print(f"bench/run.py --{profile_name}: {', '.join(args.only)}; logs in {shown(logs)}", flush=True)
    try:
        STARTED.redis_url = pick_redis_db(args.redis_db)
        database = f"cc_bench_{stamp.replace('-', '_')}_{os.getpid()}"
        create_database(database)
        results["machine"] = machine(STARTED.redis_url, database)
        before = cores_snapshot()
        time.sleep(1.0)
        busy = cores_busy(before, cores_snapshot())
        results["machine"]["cores_busy_pct_before_start"] = busy
        if any((v or 0) > 25 for v in busy.values()):
            print(
                f"note: the machine is busy before the run starts ({busy}); other work shares these cores, "
                "so absolute figures will be lower than on a quiet machine (ratios within the run hold better)",
                flush=True,
            )
        results["settings"] = public_settings(base, database, STARTED.redis_url)
        asyncio.run(asyncio.wait_for(run_all(args, profile, stamp, results, logs), profile["max_minutes"] * 60))
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything this run started", flush=True)
        results["error"] = "interrupted"
        status = 130
    except Exception as exc:
        print(f"\nbenchmark error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        results["error"] = f"{type(exc).__name__}: {exc}"
        status = 1
    finally:
        STARTED.stop_all()
        if STARTED.database:
            try:
                drop_database(STARTED.database)
            except Exception as exc:
                print(f"could not drop {STARTED.database}: {exc}", file=sys.stderr)
        if STARTED.redis_url:
            with contextlib.suppress(Exception):
                import redis

                redis.Redis.from_url(STARTED.redis_url).flushdb()
    results.pop("_base_env", None)
    results["duration_seconds"] = round(time.monotonic() - t_start, 1)
    if "machine" in results:
        results["ratios"] = ratios(results)
        results["targets"] = targets(results)
        results["problems"] = problems(results)
        print("\n" + report(results))
    print(f"\nfinished in {results['duration_seconds']}s")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {shown(out_path)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
