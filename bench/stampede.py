"""The drop stampede (issue 22): every tap answered, at several times a process's capacity,
on one server process and on two behind HAProxy, as the README's deployment runs them. Not
a test: it prints tables and writes JSON, and never fails on a figure.

    .venv/bin/python bench/stampede.py                 # everything, about 8 minutes
    .venv/bin/python bench/stampede.py --quick         # smaller counts, about 4 minutes
    .venv/bin/python bench/stampede.py --smoke         # tiny counts (tests/bench/test_smoke.py)
    .venv/bin/python bench/stampede.py --only capacity,overload --topologies two --profile

Topologies (``--topologies``):
  one   one daphne pinned to core 0, clients straight to it; the load on core 1
  two   two daphne processes, one per core (0 and 1), behind HAProxy running
        deploy/haproxy/haproxy.cfg as shipped (its environment names the ports and paths);
        the load, HAProxy, PostgreSQL and Redis share the two cores with them
  one-proxy  one daphne on core 0 behind the same HAProxy (both of its server lines name
        that one process): what the proxy itself costs
Every process gets the same production-like settings as bench/run.py (DEBUG=0, PostgreSQL,
Redis, no Celery worker, limits that the bench's few buyers cannot trigger) and
TRUSTED_PROXIES=127.0.0.1.

Scenarios (``--only``), in this order on each topology:
  capacity  closed loop, as many keep-alive connections per process as it admits viewers'
            buys at once (ADMISSION_MAX_IN_FLIGHT less the creators' reserve: 6), buys of a SKU
            that does not run out: the most buys/s (201s) the topology answers
  stampede  2,000 buyers tap a 100-unit flash deal within 1 s, each from its own new
            connection and its own address (127.1.x.y: per-client limits see 2,000 clients)
  overload  4 x one process's capacity (measured on "one"; the same offered rate on every
            topology) for 10 s on a SKU of several thousand units, keep-alive connections
  storm     2,000 viewers of the live stream; the server process(es) restart; every viewer
            comes back as the storefront's page does (backoff with jitter from 1 s, a fresh
            viewer token, polling the stream every 3 s meanwhile) while buys of a pinned
            SKU go on at 50/s; how long until every viewer holds the final stock value.
            One process: it stops and starts again (an outage). Two behind the proxy: a
            rolling restart, one at a time, drained first (deploy/haproxy/README.md); the
            figures count from the last process's stop, when every viewer is on it

Answers are classed: 201 (winners), 409 (losers: sold out, over the per-buyer limit),
503 and 429 (refused), other statuses, errors (connection refused, reset, closed) and
timeouts, each with count and p50/p95/p99/max from the scheduled send (open loop: a slow
server cannot slow the load down and hide its queue). After each buying scenario the
database is checked: units sold = paid orders, nothing oversold. CPU is accounted per
process role from /proc (the servers, HAProxy, this database's PostgreSQL backends,
PostgreSQL's own processes, Redis, the load generators, and whatever else ran on the
machine), per request.

Every loop is bounded in count and time and targets 127.0.0.1 only. Everything started is
stopped on the way out (also on Ctrl-C or an error), the database ``cc_bench_<ts>`` dropped
and the Redis index flushed. Results: bench/results/stampede-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run as R  # noqa: E402  (bench/run.py: processes, database, machine, helpers)

sys.path.insert(0, str(R.ROOT))
from loadgen import Connection, HttpError, build_request, percentiles  # noqa: E402

from creatorcommerce.haproxy import SHIPPED_CONFIG, AdminSocket, shipped_env  # noqa: E402

HOST = R.HOST
SCENARIOS = ("capacity", "stampede", "overload", "storm")
TOPOLOGIES = {
    "one": {"processes": 1, "proxy": False},
    "one-proxy": {"processes": 1, "proxy": True},
    "two": {"processes": 2, "proxy": True},
}
CLASSES = ("201", "409", "503", "429", "other", "error", "timeout")
# daphne's accept queue (the README's deployment), and more options (--daphne-args).
BACKLOG = 1024
DAPHNE_ARGS: list[str] = []

PROFILES = {
    "default": {
        "buyers": 2000,
        "capacity_seconds": 5,
        "capacity_connections": None,  # per process; None: as many as it admits viewers' buys
        "taps": 2000,
        "tap_window": 1.0,
        "deal_units": 100,
        "overload_factor": 4,
        "overload_seconds": 10,
        "overload_stock": 5000,
        "overload_connections": 1024,
        "overload_max_rate": None,
        "viewers": 2000,
        "per_process": 500,
        "storm_buy_rate": 50,
        "storm_first_ms": 1000,
        "storm_max_ms": 30000,
        "storm_poll_ms": 3000,
        # The page's own behaviour (static/js/stream.js): first poll 5-10 s after the drop,
        # polls backing off while they fail, an answered poll making the socket try at once,
        # the viewer token reused while valid. --storm-page 'reuse_token=0,poll_first_ms=0,
        # poll_backoff=0,poll_wakes_socket=0' plays the page before 2026-12-05.
        "storm_poll_first_ms": [5000, 10000],
        "storm_reuse_token": True,
        "storm_poll_backoff": True,
        "storm_poll_wakes_socket": True,
        "storm_limit": 90,
        "request_timeout": 15,
        "quiet": 1.0,
        "quiet_limit": 90,
        "max_minutes": 30,
    },
    "quick": {
        "buyers": 600,
        "capacity_seconds": 3,
        "capacity_connections": None,
        "taps": 600,
        "tap_window": 1.0,
        "deal_units": 30,
        "overload_factor": 4,
        "overload_seconds": 4,
        "overload_stock": 2000,
        "overload_connections": 512,
        "overload_max_rate": None,
        "viewers": 500,
        "per_process": 250,
        "storm_buy_rate": 50,
        "storm_first_ms": 1000,
        "storm_max_ms": 30000,
        "storm_poll_ms": 3000,
        # The page's own behaviour (static/js/stream.js): first poll 5-10 s after the drop,
        # polls backing off while they fail, an answered poll making the socket try at once,
        # the viewer token reused while valid. --storm-page 'reuse_token=0,poll_first_ms=0,
        # poll_backoff=0,poll_wakes_socket=0' plays the page before 2026-12-05.
        "storm_poll_first_ms": [5000, 10000],
        "storm_reuse_token": True,
        "storm_poll_backoff": True,
        "storm_poll_wakes_socket": True,
        "storm_limit": 60,
        "request_timeout": 10,
        "quiet": 1.0,
        "quiet_limit": 60,
        "max_minutes": 15,
    },
    "smoke": {
        "buyers": 20,
        "capacity_seconds": 1,
        "capacity_connections": 4,
        "taps": 20,
        "tap_window": 0.5,
        "deal_units": 5,
        "overload_factor": 4,
        "overload_seconds": 1,
        "overload_stock": 40,
        "overload_connections": 16,
        "overload_max_rate": 40,
        "viewers": 10,
        "per_process": 10,
        "storm_buy_rate": 10,
        "storm_first_ms": 200,
        "storm_max_ms": 2000,
        "storm_poll_ms": 1000,
        # The page's own behaviour (static/js/stream.js): first poll 5-10 s after the drop,
        # polls backing off while they fail, an answered poll making the socket try at once,
        # the viewer token reused while valid. --storm-page 'reuse_token=0,poll_first_ms=0,
        # poll_backoff=0,poll_wakes_socket=0' plays the page before 2026-12-05.
        "storm_poll_first_ms": [5000, 10000],
        "storm_reuse_token": True,
        "storm_poll_backoff": True,
        "storm_poll_wakes_socket": True,
        "storm_limit": 60,
        "request_timeout": 10,
        "quiet": 0.3,
        "quiet_limit": 20,
        # Tiny counts, but it migrates, seeds and starts five server processes; a CI machine
        # running the whole suite can be 9x slower than a quiet one.
        "max_minutes": 12,
    },
}


# -- addresses ----------------------------------------------------------------------------


def client_address(i: int) -> str:
    """Client i's own loopback address (all of 127.0.0.0/8 is this host's): per-client
    limits, and X-Forwarded-For behind the proxy, see many clients, not one."""
    return f"127.1.{(i // 250) % 250}.{i % 250 + 1}"


class SourcedConnection(Connection):
    """A keep-alive connection from a given local address."""

    def __init__(self, host: str, port: int, source: str):
        super().__init__(host, port)
        self.source = source

    async def open(self) -> SourcedConnection:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, limit=1 << 20, local_addr=(self.source, 0)
        )
        self.last_used = time.monotonic()
        return self


# -- processes ----------------------------------------------------------------------------


class Web:
    """One daphne process on ``core``, restartable on the same port."""

    def __init__(self, label: str, core: int | None, env: dict, logs: Path):
        self.label, self.core, self.env = label, core, env
        self.port = R.free_port()
        self.log = logs / f"{label}.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.extra_args: list[str] = []

    def command(self) -> list[str]:
        # As the README's deployment runs it: an accept queue of 1,024 (Twisted's default of
        # 50 overflowed when a stampede's connections arrived: clients' SYNs were dropped).
        endpoint = f"tcp:port={self.port}:interface={HOST}:backlog={BACKLOG}"
        cmd = [sys.executable, "-m", "daphne", "-v", "0", "-e", endpoint]
        cmd += self.extra_args
        cmd.append("creatorcommerce.asgi:application")
        return R.on_core(self.core, cmd) if self.core is not None else cmd

    def launch(self) -> None:
        self.starts += 1
        self.proc = R.spawn(self.label, self.command(), self.env, self.log)

    async def ready(self, timeout: float = 90) -> None:
        ready = asyncio.ensure_future(R.wait_http(HOST, self.port, "/livez", timeout=timeout))
        while not ready.done():
            await asyncio.wait([ready], timeout=0.25)
            if not ready.done() and self.proc.poll() is not None:
                ready.cancel()
                break
        if ready.cancelled() or ready.exception() is not None:
            raise RuntimeError(f"{self.label} did not start; log tail:\n{R.tail(self.log)}")

    def stop(self) -> None:
        if self.proc is not None:
            R.STARTED.stop(self.proc.pid)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class Proxy:
    """Debian's HAProxy with the shipped config; only the environment it names differs
    (creatorcommerce/haproxy.py, as the scale-out test runs it)."""

    def __init__(self, servers: list[Web], logs: Path):
        self.port = R.free_port()
        self.socket = Path(f"/tmp/cc-bench-haproxy-{os.getpid()}-{self.port}.sock")
        self.log = logs / "haproxy.log"
        self.env = shipped_env(
            bind=f"{HOST}:{self.port}", servers=[f"{HOST}:{web.port}" for web in servers], socket_path=self.socket
        )
        self.admin = AdminSocket(self.socket)
        self.proc: subprocess.Popen | None = None

    async def start(self) -> None:
        self.proc = R.spawn("haproxy", ["haproxy", "-db", "-f", str(SHIPPED_CONFIG)], self.env, self.log)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited:\n{R.tail(self.log)}")
            with contextlib.suppress(OSError, IndexError, KeyError):
                if all(s.startswith("UP") for s in self.server_states().values()):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"haproxy's servers did not come up: {self.server_states()}")
            await asyncio.sleep(0.1)

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        return self.admin.stats()

    async def drain(self, server: str, limit: float) -> None:
        """Out of the pool; until its requests in flight are done (at most ``limit`` s)."""
        await asyncio.to_thread(self.admin.drain, server, wait=limit)

    async def ready(self, server: str, limit: float = 30) -> None:
        """Back in the pool, once HAProxy has it UP."""
        await asyncio.to_thread(self.admin.ready, server, wait=limit)

    def server_states(self) -> dict[str, str]:
        return {name: row["status"] for name, row in self.admin.servers().items() if name.startswith("web")}

    def counters(self) -> dict:
        """Per server: requests answered by status class, and the retries and redispatches."""
        out = {}
        with contextlib.suppress(OSError, IndexError, KeyError):
            for (px, sv), row in self.stats().items():
                if px in ("web", "viewers"):
                    keys = ("hrsp_2xx", "hrsp_4xx", "hrsp_5xx", "stot", "wretr", "wredis", "econ", "eresp", "scur")
                    out[f"{px}/{sv}"] = {k: int(row[k]) for k in keys if row.get(k, "").isdigit()} | {
                        "status": row["status"]
                    }
        return out

    def stop(self) -> None:
        if self.proc is not None:
            R.STARTED.stop(self.proc.pid)
        with contextlib.suppress(OSError):
            self.socket.unlink()


class Topology:
    def __init__(self, name: str, env: dict, logs: Path):
        spec = TOPOLOGIES[name]
        self.name, self.proxied = name, spec["proxy"]
        cores = [0, 1] if R.have_taskset() else [None, None]
        self.webs = [Web(f"{name}-web{i + 1}", cores[i], env, logs) for i in range(spec["processes"])]
        for web in self.webs:
            web.extra_args = list(DAPHNE_ARGS)
        self.proxy = Proxy(self.webs, logs) if self.proxied else None

    @property
    def port(self) -> int:
        return self.proxy.port if self.proxy else self.webs[0].port

    @property
    def processes(self) -> int:
        return len(self.webs)

    def load_cores(self) -> set[int] | None:
        """Where the load runs: core 1 beside one process on core 0; anywhere beside two."""
        if not R.have_taskset():
            return None
        return {1} if self.processes == 1 else {0, 1}

    async def start(self) -> None:
        for web in self.webs:
            web.launch()
        for web in self.webs:
            await web.ready()
        if self.proxy:
            await self.proxy.start()

    async def restart(self) -> tuple[float, float]:
        """Restart the server processes; returns when the (last) stop began and when the
        process(es) answered again (epoch seconds). One process: stop it (SIGTERM) and
        start it again on its port, an outage. Behind the proxy with more than one: a
        rolling restart (``rolling_restart``)."""
        if self.proxy is not None and len(self.webs) > 1:
            return await self.rolling_restart()
        stopped_at = time.time()
        for web in self.webs:
            web.stop()
        for web in self.webs:
            web.launch()
        for web in self.webs:
            await web.ready()
        return stopped_at, time.time()

    async def rolling_restart(self) -> tuple[float, float]:
        """One process at a time, as deploy/haproxy/README.md ("Rolling restart") tells an
        operator to restart a release: drain it in HAProxy (no new requests or sockets go
        to it), wait for its requests in flight to finish (at most 5 s), stop it, start it,
        put it back and wait until HAProxy has it UP; then the next. Its viewers' sockets
        close with it and their pages reconnect to the other process, so the last step is
        the storm: by then every viewer is on the last process. Returns when that last
        stop began and when the last process answered again; ``restart_steps`` has them all."""
        self.restart_steps = []
        stopped_at = up_at = time.time()
        for web in self.webs:
            server = web.label.rsplit("-", 1)[1]  # "two-web1" -> HAProxy's "web1"
            began = time.time()
            await self.proxy.drain(server, limit=5)
            stopped_at = time.time()
            web.stop()
            web.launch()
            await web.ready()
            up_at = time.time()
            await self.proxy.ready(server)
            self.restart_steps.append(
                {
                    "server": server,
                    "drained_s": round(stopped_at - began, 2),
                    "restart_s": round(up_at - stopped_at, 2),
                    "back_in_pool_s": round(time.time() - up_at, 2),
                }
            )
        return stopped_at, up_at

    def stop(self) -> None:
        if self.proxy:
            self.proxy.stop()
        for web in self.webs:
            web.stop()

    def roles(self) -> dict[str, list[int]]:
        return {
            "servers": [w.pid for w in self.webs if w.proc is not None],
            "proxy": [self.proxy.proc.pid] if self.proxy and self.proxy.proc else [],
        }


# -- CPU accounting -------------------------------------------------------------------------

CLK = os.sysconf("SC_CLK_TCK")
PG_AUX = ("checkpointer", "background writer", "walwriter", "wal writer", "autovacuum", "logical replication")


def _pid_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK


def cpu_snapshot(database: str, roles: dict[str, list[int]]) -> dict:
    """CPU seconds so far of every process that matters here, by pid and role."""
    pids: dict[int, str] = {}
    for role, listed in roles.items():
        for pid in listed:
            pids[pid] = role
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in pids:
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
        if comm == "postgres":
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if f" {database} " in cmdline:
                pids[int(entry)] = "postgres (this database)"
            elif any(word in cmdline for word in PG_AUX) or "postgres:" not in cmdline:
                pids[int(entry)] = "postgres (shared)"
        elif comm == "redis-server":
            pids[int(entry)] = "redis"
    by_pid = {pid: (role, _pid_cpu(pid)) for pid, role in pids.items()}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    busy = sum(b for b, _ in R.cores_snapshot().values()) / CLK
    return {"by_pid": by_pid, "self": usage.ru_utime + usage.ru_stime, "busy": busy, "at": time.monotonic()}


def cpu_delta(before: dict, after: dict) -> dict:
    """Seconds of CPU per role between two snapshots; "other" is the rest of the machine's
    busy time (other work sharing these cores)."""
    roles: dict[str, float] = defaultdict(float)
    for pid, (role, cpu) in after["by_pid"].items():
        if cpu is None:
            continue
        start = before["by_pid"].get(pid, (role, 0.0))[1] or 0.0
        roles[role] += max(0.0, cpu - start)
    roles["load"] += after["self"] - before["self"]
    busy = after["busy"] - before["busy"]
    known = sum(roles.values())
    out = {role: round(seconds, 3) for role, seconds in sorted(roles.items())}
    out["other"] = round(max(0.0, busy - known), 3)
    out["machine_busy"] = round(busy, 3)
    out["wall"] = round(after["at"] - before["at"], 3)
    return out


def per_request(cpu: dict, requests: int) -> dict:
    if not requests:
        return {}
    skip = {"wall", "machine_busy"}
    return {k: round(1000 * v / requests, 3) for k, v in cpu.items() if k not in skip} | {
        "machine_busy": round(1000 * cpu["machine_busy"] / requests, 3)
    }


# -- answers --------------------------------------------------------------------------------


class Tally:
    """Answers by class (201, 409, 503, 429, other, error, timeout), latency in ms."""

    def __init__(self):
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.codes: Counter[str] = Counter()
        self.retry_after: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.finished: list[float] = []

    def answer(self, latency_ms: float, status: int, headers: dict, body: bytes) -> None:
        key = str(status)
        cls = key if key in CLASSES else "other"
        self.latency[cls].append(latency_ms)
        code = answer_code(body)
        # HAProxy's own refusals say so in their message (deploy/haproxy/haproxy.cfg).
        proxy = " (proxy)" if status in (502, 503, 504) and b"(proxy)" in body else ""
        self.codes[f"{status} {code}{proxy}" if code else key] += 1
        if status in (429, 503):
            self.retry_after[f"{status} {'with' if 'retry-after' in headers else 'without'} Retry-After"] += 1
        self.finished.append(time.monotonic())

    def error(self, latency_ms: float, reason: str) -> None:
        self.latency["error"].append(latency_ms)
        self.errors[reason[:80]] += 1

    def timeout(self) -> None:
        self.latency["timeout"].append(math.inf)

    def count(self, cls: str) -> int:
        return len(self.latency.get(cls, []))

    def summary(self, *, sent: int, elapsed: float) -> dict:
        every = [x for values in self.latency.values() for x in values]
        classes = {}
        for cls in CLASSES:
            values = self.latency.get(cls)
            if values:
                finite = [v for v in values if v != math.inf]
                classes[cls] = {
                    "count": len(values),
                    **percentiles(values),
                    "max": round(max(finite), 3) if finite else None,
                }
        answered = sum(len(v) for k, v in self.latency.items() if k not in ("error", "timeout"))
        return {
            "sent": sent,
            "answered": answered,
            "elapsed_s": round(elapsed, 3),
            "ok": self.count("201"),
            "ok_rps": round(self.count("201") / elapsed, 1) if elapsed else None,
            "answered_rps": round(answered / elapsed, 1) if elapsed else None,
            "classes": classes,
            "all": {"count": len(every), **percentiles(every)},
            "max_wait_ms": (
                "timeout" if any(v == math.inf for v in every) else (round(max(every), 3) if every else None)
            ),
            "codes": dict(self.codes.most_common()),
            "retry_after": dict(self.retry_after),
            "errors": dict(self.errors.most_common(10)),
        }


def answer_code(body: bytes) -> str | None:
    if body[:1] == b"{":
        with contextlib.suppress(ValueError, AttributeError):
            return json.loads(body).get("code")
    return None


# The stream page's retry of a refused tap (static/js/stream.js): 503 overloaded or 429
# rate_limited are tried again under the same Idempotency-Key after Retry-After plus a random
# wait that doubles each time (0.4 s, capped at 8 s), at most 6 tries in all.
RETRY_TRIES = 6
RETRY_BASE = 0.4
RETRY_CAP = 8.0


def busy_answer(status: int, body: bytes) -> bool:
    return (status, answer_code(body)) in ((503, "overloaded"), (429, "rate_limited"))


async def taps(*, port: int, moments: list[float], make, source, timeout: float, retries: bool) -> dict:
    """Each tapper i taps once at ``moments[i]`` on a new connection and, with ``retries``,
    tries again as the page does while the answer is "busy". Every answer is classed (its
    latency from its own send); each tapper's outcome too, with the time from the tap to the
    last answer."""
    loop = asyncio.get_running_loop()
    answers = Tally()
    outcomes: dict[str, list[float]] = defaultdict(list)
    tries: Counter[int] = Counter()
    rng = random.Random(23)

    async def tapper(i: int, at: float) -> None:
        raw = make(i)
        outcome, attempt = "timeout", 0
        while True:
            sent = loop.time()
            conn = SourcedConnection(HOST, port, source(i))
            try:
                response = await asyncio.wait_for(conn.request(raw), timeout)
            except TimeoutError:
                answers.timeout()
                outcome = "timeout"
                break
            except (HttpError, OSError) as exc:
                answers.error((loop.time() - sent) * 1000, f"{type(exc).__name__}: {exc}")
                outcome = "error"
                break
            finally:
                conn.close()
            answers.answer((loop.time() - sent) * 1000, response.status, response.headers, response.body)
            attempt += 1
            if retries and busy_answer(response.status, response.body) and attempt < RETRY_TRIES:
                try:
                    floor = float(response.headers.get("retry-after", "0") or 0)
                except ValueError:
                    floor = 0.0
                await asyncio.sleep(floor + rng.random() * min(RETRY_CAP, RETRY_BASE * 2 ** (attempt - 1)))
                continue
            status = response.status
            busy = busy_answer(status, response.body)
            outcome = {201: "won", 409: "lost"}.get(status, "gave up" if busy else "other")
            break
        tries[attempt] += 1
        outcomes[outcome].append((loop.time() - at) * 1000)

    start = loop.time() + 0.05
    tasks = []
    for i, moment in enumerate(moments):
        at = start + moment
        delay = at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(tapper(i, at)))
    await asyncio.wait(tasks)
    elapsed = max(answers.finished) - start if answers.finished else moments[-1]
    out = answers.summary(sent=sum(len(v) for v in answers.latency.values()), elapsed=max(elapsed, 0.001))
    out["tappers"] = {
        "count": len(moments),
        "retries": retries,
        "tries": {str(k): v for k, v in sorted(tries.items())},
        "outcomes": {
            k: {"count": len(v), **percentiles(v), "max": round(max(v), 3) if v and max(v) != math.inf else None}
            for k, v in sorted(outcomes.items())
        },
    }
    out["connections"] = out["sent"]
    return out


async def fire(
    *,
    port: int,
    count: int,
    due,
    make,
    source,
    fresh: bool,
    timeout: float,
    max_connections: int = 512,
    stop: asyncio.Event | None = None,
) -> dict:
    """Open loop: request i (``make(i)``) is sent at ``start + due(i)`` whatever the server
    does, on a new connection from ``source(i)`` (``fresh``: a tapper each) or on one of at
    most ``max_connections`` keep-alive connections (connection k from ``source(k)``);
    latency runs from the due time. Bounded: ``count`` requests, each given up after
    ``timeout`` s; ``stop`` ends the sending early."""
    loop = asyncio.get_running_loop()
    tally = Tally()
    idle: list[SourcedConnection] = []
    opened = 0
    waiters: list[asyncio.Future] = []

    async def acquire() -> SourcedConnection:
        nonlocal opened
        if idle:
            return idle.pop()
        if opened < max_connections:
            opened += 1
            return SourcedConnection(HOST, port, source(opened - 1))
        waiter = loop.create_future()
        waiters.append(waiter)
        return await waiter

    def release(conn: SourcedConnection) -> None:
        while waiters:
            waiter = waiters.pop(0)
            if not waiter.done():
                waiter.set_result(conn)
                return
        idle.append(conn)

    async def one(i: int, at: float) -> None:
        conn = SourcedConnection(HOST, port, source(i)) if fresh else await acquire()
        try:
            response = await asyncio.wait_for(conn.request(make(i)), max(0.001, at + timeout - loop.time()))
        except TimeoutError:
            tally.timeout()
            conn.close()
        except (HttpError, OSError) as exc:
            tally.error((loop.time() - at) * 1000, f"{type(exc).__name__}: {exc}")
            conn.close()
        else:
            tally.answer((loop.time() - at) * 1000, response.status, response.headers, response.body)
        finally:
            if fresh:
                conn.close()
            else:
                release(conn)

    start = loop.time() + 0.05
    tasks = []
    sent = 0
    for i in range(count):
        if stop is not None and stop.is_set():
            break
        at = start + due(i)
        delay = at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(i, at)))
        sent += 1
    if tasks:
        await asyncio.wait(tasks)
    for conn in idle:
        conn.close()
    # From the first due time to the last answer (the loop's clock is time.monotonic()).
    last_due = due(sent - 1) if sent else 0.0
    finished = max(tally.finished) - start if tally.finished else 0.0
    elapsed = max(last_due, finished, 0.001)
    out = tally.summary(sent=sent, elapsed=elapsed)
    out["connections"] = sent if fresh else opened
    return out


# -- the run --------------------------------------------------------------------------------


class Run:
    def __init__(self, args, profile: dict, stamp: str, results: dict, logs: Path):
        self.args, self.p, self.stamp, self.results, self.logs = args, profile, stamp, results, logs
        self.database = R.STARTED.database
        self.redis_url = R.STARTED.redis_url
        self.seed: dict = {}
        self.capacity_one: float | None = None

    # -- set-up --

    def env(self) -> dict:
        env = R.bench_env(self.results["_base_env"], database=self.database, redis_url=self.redis_url)
        env["TRUSTED_PROXIES"] = "127.0.0.1"
        return env

    async def setup(self) -> None:
        env = self.env()
        print(f"[setup] database {self.database}, Redis {self.redis_url}", flush=True)
        t0 = time.monotonic()
        rc, out = await R.run_cmd(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, timeout=600
        )
        if rc != 0:
            raise RuntimeError(f"migrate failed:\n{out[-2000:]}")
        p, tops = self.p, self.args.topologies
        seed_file = self.logs / "seed.json"
        cap_stock = 1_000_000
        cmd = [
            sys.executable,
            str(BENCH / "seed.py"),
            "--buyers",
            str(p["buyers"]),
            "--fan-stock",
            "1000000",
            "--out",
            str(seed_file),
        ]
        for top in tops:
            cmd += ["--buy-sku", f"cap-{top}={cap_stock}", "--buy-sku", f"over-{top}={p['overload_stock']}"]
            cmd += ["--deal", f"{top}={p['deal_units']}"]
        rc, out = await R.run_cmd(cmd, env=env, timeout=1800)
        if rc != 0:
            raise RuntimeError(f"seed failed:\n{out[-3000:]}")
        self.seed = json.loads(seed_file.read_text())
        self.results["setup"] = {
            "migrate_and_seed_seconds": round(time.monotonic() - t0, 1),
            "buyers": len(self.seed["buyer_tokens"]),
            "seed_seconds": self.seed["seconds"],
        }
        print(
            f"[setup] migrated and seeded in {self.results['setup']['migrate_and_seed_seconds']}s "
            f"({len(self.seed['buyer_tokens'])} buyers)",
            flush=True,
        )

    def buy_request(self, port: int, i: int, *, tag: str, body: bytes) -> bytes:
        tokens = self.seed["buyer_tokens"]
        headers = {
            "X-Session-Token": tokens[i % len(tokens)],
            "Idempotency-Key": f"st-{self.stamp}-{tag}-{i:07d}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        return build_request("POST", "/api/v1/orders/", HOST, port, headers=headers, body=body)

    def roles(self, top: Topology, clients=None) -> dict[str, list[int]]:
        roles = top.roles()
        roles["load"] = [p.pid for p in clients.procs] if clients else []
        return roles

    async def measured(self, top: Topology, coro, clients=None):
        """Run ``coro`` with CPU accounted around it."""
        cores0, steal0 = R.cores_snapshot(), R.steal_snapshot()
        before = cpu_snapshot(self.database, self.roles(top, clients))
        result = await coro
        after = cpu_snapshot(self.database, self.roles(top, clients))
        result["cpu_seconds"] = cpu_delta(before, after)
        result["cores_busy_pct"] = R.cores_busy(cores0, R.cores_snapshot())
        result["steal_pct"] = R.steal_share(steal0, R.steal_snapshot())
        result["load_average"] = round(os.getloadavg()[0], 2)
        return result

    # -- checks --

    def sku_state(self, sku: dict) -> dict:
        with R.pg_connect(self.database) as conn:
            return R.stock_state(conn, [sku["level_id"]])

    async def sku_check(self, sku: dict, client: dict, before: dict | None = None) -> dict:
        """The SKU's row and orders once they stop changing, against ``before`` (the state
        when the scenario started; none: as seeded)."""
        with R.pg_connect(self.database) as conn:
            after = await R.settled_state(conn, [sku["level_id"]], quiet=self.p["quiet"], limit=self.p["quiet_limit"])
        none = {"orders": 0, "units": 0}
        before = before or {"available": sku["initial"], "by_status": {}}
        paid = after["by_status"].get("paid", none)
        paid0 = before["by_status"].get("paid", none)
        held = after["by_status"].get("reserved", none)["units"]
        sold = before["available"] - after["available"]
        orders = paid["orders"] - paid0["orders"]
        unanswered = client["sent"] - client["answered"]
        return {
            "initial": before["available"],
            "available": after["available"],
            "units_sold": sold,
            "paid_orders": orders,
            "paid_units": paid["units"] - paid0["units"],
            "client_201": client["ok"],
            "sold_equals_paid": sku["initial"] - after["available"] == paid["units"] + held,
            "client_201_consistent": client["ok"] <= orders <= client["ok"] + unanswered,
            "oversold": max(0, -after["available"]),
        }

    async def deal_check(self, deal: dict, client: dict) -> dict:
        with R.pg_connect(self.database) as conn:
            after = await R.settled_state(conn, [deal["level_id"]], quiet=self.p["quiet"], limit=self.p["quiet_limit"])
            row = conn.execute("SELECT quantity, remaining FROM streams_flashdeal WHERE id = %s", [deal["deal_id"]])
            remaining = row.fetchone()[1]
        paid = after["by_status"].get("paid", {"orders": 0, "units": 0})
        held = after["by_status"].get("reserved", {"units": 0})["units"]
        sold = deal["quantity"] - remaining
        unanswered = client["sent"] - client["answered"]
        return {
            "deal_units": deal["quantity"],
            "deal_remaining": remaining,
            "shelf_available": after["available"],
            "units_sold": sold,
            "paid_orders": paid["orders"],
            "paid_units": paid["units"],
            "client_201": client["ok"],
            "sold_equals_paid": sold == paid["units"] + held,
            "client_201_consistent": client["ok"] <= paid["orders"] <= client["ok"] + unanswered,
            "oversold": max(0, sold - deal["quantity"]) + max(0, -remaining) + max(0, -after["available"]),
        }

    # -- scenarios --

    async def warm(self, top: Topology) -> None:
        """Imports, first queries and connection pools, on every process (through the proxy
        the buys spread over both)."""
        sku = self.seed["buy_skus"][f"cap-{top.name}"]
        body = json.dumps({"sku": sku["code"], "quantity": 1}).encode()
        for web in top.webs:
            await fire(
                port=web.port,
                count=10,
                due=lambda i: i / 20,
                make=lambda i, w=web: self.buy_request(w.port, i, tag=f"warm-{w.label}", body=body),
                source=client_address,
                fresh=False,
                timeout=30,
                max_connections=4,
            )

    def admitted_buys(self) -> int:
        """How many viewers' requests a server process admits at once (its in-flight bound
        less the creators' reserve, as the servers are configured): the capacity run keeps
        exactly that many buys in flight per process. More connections would measure the
        refusals' cost too (each 503 takes CPU from the buys), not the most buys/s."""
        env = self.env()
        bound = int(env.get("ADMISSION_MAX_IN_FLIGHT") or 8)
        reserve = int(env.get("ADMISSION_CREATOR_RESERVE") or 2)
        return max(1, bound - reserve) if bound else 32

    async def capacity(self, top: Topology) -> dict:
        sku = self.seed["buy_skus"][f"cap-{top.name}"]
        body = json.dumps({"sku": sku["code"], "quantity": 1}).encode()
        connections = (self.p["capacity_connections"] or self.admitted_buys()) * top.processes
        seconds = self.p["capacity_seconds"]
        tally = Tally()
        counter = iter(range(10_000_000))
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + seconds

        async def client(k: int) -> None:
            conn = SourcedConnection(HOST, top.port, client_address(k))
            while loop.time() < stop_at:
                raw = self.buy_request(top.port, next(counter), tag=f"cap-{top.name}", body=body)
                t0 = loop.time()
                try:
                    response = await asyncio.wait_for(conn.request(raw), self.p["request_timeout"])
                except TimeoutError:
                    tally.timeout()
                    conn.close()
                except (HttpError, OSError) as exc:
                    tally.error((loop.time() - t0) * 1000, f"{type(exc).__name__}: {exc}")
                    conn.close()
                    await asyncio.sleep(0.05)
                else:
                    tally.answer((loop.time() - t0) * 1000, response.status, response.headers, response.body)
            conn.close()

        t0 = loop.time()
        profiles = self.start_profiles(top, "capacity", seconds)
        await asyncio.gather(*(client(k) for k in range(connections)))
        elapsed = loop.time() - t0
        out = tally.summary(sent=sum(len(v) for v in tally.latency.values()), elapsed=elapsed)
        out["connections"] = connections
        out["profiles"] = await self.finish_profiles(profiles)
        return out

    async def stampede(self, top: Topology) -> dict:
        deal = self.seed["deals"][top.name]
        stream = self.seed["fan"]["stream_id"]
        body = json.dumps({"sku": deal["code"], "quantity": 1, "stream": stream}).encode()
        count, window = self.p["taps"], self.p["tap_window"]
        # Each buyer taps once, at a random moment of the window (seeded: every run alike), and
        # tries again as the page does when the answer is "busy" (--no-tap-retries: not).
        moments = sorted(random.Random(22).random() * window for _ in range(count))
        profiles = self.start_profiles(top, "stampede", 8)
        out = await taps(
            port=top.port,
            moments=moments,
            make=lambda i: self.buy_request(top.port, i, tag=f"tap-{top.name}", body=body),
            source=client_address,
            timeout=self.p["request_timeout"],
            retries=not self.args.no_tap_retries,
        )
        out["profiles"] = await self.finish_profiles(profiles)
        return out

    def overload_rate(self, top: Topology) -> float:
        if self.args.overload_rate:
            return self.args.overload_rate
        base = self.capacity_one
        if base is None:
            cap = self.results["topologies"].get(top.name, {}).get("capacity")
            base = cap["ok_rps"] / top.processes if cap and cap.get("ok_rps") else 200.0
        rate = round(self.p["overload_factor"] * base)
        if self.p["overload_max_rate"]:
            rate = min(rate, self.p["overload_max_rate"])
        return max(rate, 1)

    async def overload(self, top: Topology, rate: float) -> dict:
        sku = self.seed["buy_skus"][f"over-{top.name}"]
        body = json.dumps({"sku": sku["code"], "quantity": 1}).encode()
        count = max(1, round(rate * self.p["overload_seconds"]))
        out = await fire(
            port=top.port,
            count=count,
            due=lambda i: i / rate,
            make=lambda i: self.buy_request(top.port, i, tag=f"over-{top.name}", body=body),
            source=client_address,
            fresh=False,
            timeout=self.p["request_timeout"],
            max_connections=self.p["overload_connections"],
        )
        out["offered_rps"] = rate
        return out

    async def storm(self, top: Topology) -> dict:
        p = self.p
        fan = self.seed["fan"]
        n = p["viewers"]
        processes = max(1, math.ceil(n / p["per_process"]))
        path = f"/ws/streams/{fan['stream_id']}/"
        out: dict = {"viewers": n, "client_processes": processes}
        async with Clients(processes, top.load_cores()) as clients:
            shares = R.split(n, processes)
            tokens = {"cmd": "tokens", "port": top.port, "stream": fan["stream_id"], "concurrency": 8}
            fetched = await clients.each([{**tokens, "n": k} for k in shares], timeout=600)
            out["tokens"] = {"fetched": sum(f["tokens"] for f in fetched), "errors": [f["errors"] for f in fetched]}
            connect = {"cmd": "connect", "port": top.port, "path": path, "tokens": True, "sku": fan["code"]}
            t0 = time.monotonic()
            answers = await clients.each([{**connect, "n": k, "hold": True, "concurrency": 16} for k in shares], 600)
            out["connect_seconds"] = round(time.monotonic() - t0, 2)
            out["connected"] = sum(a["connected"] for a in answers)
            out["connect_failed"] = [a["failed"] for a in answers if a["failed"]]
            print(f"  storm {top.name}: {out['connected']} viewers connected in {out['connect_seconds']}s", flush=True)
            storm = {
                "cmd": "storm",
                "port": top.port,
                "stream": fan["stream_id"],
                "first_ms": p["storm_first_ms"],
                "max_ms": p["storm_max_ms"],
                "poll_ms": p["storm_poll_ms"],
                "poll_first_ms": p["storm_poll_first_ms"],
                "reuse_token": p["storm_reuse_token"],
                "poll_backoff": p["storm_poll_backoff"],
                "poll_wakes_socket": p["storm_poll_wakes_socket"],
                "limit_s": p["storm_limit"],
            }
            await clients.all(storm)

            body = json.dumps({"sku": fan["code"], "quantity": 1}).encode()
            rate = p["storm_buy_rate"]
            stop = asyncio.Event()
            cores0, steal0 = R.cores_snapshot(), R.steal_snapshot()
            before = cpu_snapshot(self.database, self.roles(top, clients))
            stopped_at, up_at = await top.restart()
            print(f"  storm {top.name}: restarted in {up_at - stopped_at:.1f}s; buys at {rate}/s meanwhile", flush=True)
            profiles = self.start_profiles(top, "storm", min(20, p["storm_limit"]))
            buys = asyncio.ensure_future(
                fire(
                    port=top.port,
                    count=round(rate * p["storm_limit"]),
                    due=lambda i: i / rate,
                    make=lambda i: self.buy_request(top.port, i, tag=f"storm-{top.name}", body=body),
                    source=client_address,
                    fresh=False,
                    timeout=p["request_timeout"],
                    max_connections=64,
                    stop=stop,
                )
            )
            deadline = time.monotonic() + p["storm_limit"]
            back_at = None
            while time.monotonic() < deadline:
                reports = await clients.all({"cmd": "storm_report"}, timeout=60)
                if sum(r["open"] for r in reports) >= out["connected"] and sum(r["back"] for r in reports) >= sum(
                    r["lost"] for r in reports
                ):
                    back_at = time.time()
                    break
                await asyncio.sleep(0.1)
            # A last buy's change after every viewer is back, then no more.
            await asyncio.sleep(0.5)
            stop.set()
            bought = await buys
            with R.pg_connect(self.database) as conn:
                final = await R.stable_value(conn, fan["level_id"], quiet=p["quiet"], limit=p["quiet_limit"])
            left = max(5.0, deadline - time.monotonic())
            final_at = await converge_all(clients, final, n=out["connected"], limit=left)
            after = cpu_snapshot(self.database, self.roles(top, clients))
            reports = await clients.all({"cmd": "storm_report"}, timeout=60)
            await clients.all({"cmd": "close_all"})
            out["profiles"] = await self.finish_profiles(profiles)
        lost_at = [x for r in reports for x in r["lost_at"]]
        back = [x for r in reports for x in r["back_at"]]
        came_back = [b - stopped_at for b in back if b is not None]
        out.update(
            {
                "restart_s": round(up_at - stopped_at, 2),
                "restart": "rolling" if getattr(top, "restart_steps", None) else "outage",
                "restart_steps": getattr(top, "restart_steps", None),
                "lost": len(lost_at),
                "back": len(came_back),
                "open_at_end": sum(r["open"] for r in reports),
                "back_after_stop_s": percentiles([x * 1000 for x in came_back]) if came_back else {},
                "all_back_after_stop_s": round(back_at - stopped_at, 2) if back_at else None,
                "all_back_after_up_s": round(back_at - up_at, 2) if back_at else None,
                "final_value": final,
                "all_on_final_after_stop_s": round(final_at - stopped_at, 2) if final_at else None,
                "all_on_final_after_up_s": round(final_at - up_at, 2) if final_at else None,
                "on_final": sum(r["last"].get(str(final), 0) for r in reports),
                "attempts": merge_counts([r["attempts"] for r in reports]),
                "failures": merge_counts([r["failures"] for r in reports]),
                "polls": merge_counts([r["polls"] for r in reports]),
                "buys": bought,
                "cpu_seconds": cpu_delta(before, after),
                "cores_busy_pct": R.cores_busy(cores0, R.cores_snapshot()),
                "steal_pct": R.steal_share(steal0, R.steal_snapshot()),
                "load_average": round(os.getloadavg()[0], 2),
            }
        )
        # back_after_stop_s holds ms percentiles of seconds*1000: say it in seconds.
        out["back_after_stop_s"] = {k: round(v / 1000, 2) for k, v in out["back_after_stop_s"].items()}
        return out

    # -- profiles (py-spy) --

    def start_profiles(self, top: Topology, label: str, seconds: float) -> list:
        if not self.args.profile:
            return []
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        started = []
        for web in top.webs:
            path = self.logs / f"pyspy-{top.name}-{label}-{web.label}.txt"
            cmd = [spy, "record", "--pid", str(web.pid), "--duration", str(max(1, int(seconds))), "--rate", "100"]
            cmd += ["--format", "raw", "--output", str(path), "--nonblocking"]
            # cpu: only the thread holding the GIL (where the process's Python CPU goes);
            # wall: every thread not idle, named (where requests wait, e.g. on one thread).
            cmd += ["--gil"] if self.args.profile == "cpu" else ["--threads"]
            proc = R.spawn("py-spy", cmd, os.environ.copy(), self.logs / "py-spy.log")
            started.append((proc, path, web.label))
        return started

    async def finish_profiles(self, started: list) -> dict:
        out = {}
        for proc, path, label in started:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            R.STARTED.stop(proc.pid, timeout=2)
            out[label] = summarize_profile(path)
        return out

    # -- per topology --

    async def topology(self, name: str) -> dict:
        only = set(self.args.only)
        top = Topology(name, self.env(), self.logs)
        res: dict = {"processes": top.processes, "proxy": top.proxied}
        self.results["topologies"][name] = res
        cores = top.load_cores()
        if cores:
            os.sched_setaffinity(0, cores)
        proxied = " behind HAProxy" if top.proxied else ""
        print(f"[{name}] starting {top.processes} daphne process(es){proxied}", flush=True)
        try:
            await top.start()
            res["ports"] = {"clients": top.port, "servers": [w.port for w in top.webs]}
            await self.warm(top)
            if "capacity" in only:
                self.note(res, "capacity")
                sku = self.seed["buy_skus"][f"cap-{name}"]
                before = self.sku_state(sku)
                r = await self.measured(top, self.capacity(top))
                r["check"] = await self.sku_check(sku, r, before)
                res["capacity"] = r
                if name == "one":
                    self.capacity_one = r["ok_rps"]
                print_line(name, "capacity", r)
            if "stampede" in only:
                self.note(res, "stampede")
                counters = top.proxy.counters() if top.proxy else None
                r = await self.measured(top, self.stampede(top))
                r["check"] = await self.deal_check(self.seed["deals"][name], r)
                r["proxy"] = proxy_delta(counters, top.proxy.counters()) if top.proxy else None
                res["stampede"] = r
                print_line(name, "stampede", r)
            if "overload" in only:
                self.note(res, "overload")
                rate = self.overload_rate(top)
                profiles = self.start_profiles(top, "overload", self.p["overload_seconds"])
                r = await self.measured(top, self.overload(top, rate))
                r["profiles"] = await self.finish_profiles(profiles)
                sku = self.seed["buy_skus"][f"over-{name}"]
                r["check"] = await self.sku_check(sku, r)
                res["overload"] = r
                print_line(name, f"overload {rate:g}/s", r)
            if "storm" in only:
                self.note(res, "storm")
                res["storm"] = await self.storm(top)
                print_storm(name, res["storm"])
        finally:
            if top.proxy:
                res["proxy_counters_at_end"] = top.proxy.counters()
            top.stop()
            for web in top.webs:
                self.results["server_log_problems"][web.label] = R.log_problems(web.log)
        return res

    def note(self, res: dict, scenario: str) -> None:
        res.setdefault("uptime", {})[scenario] = uptime()

    async def all(self) -> None:
        await self.setup()
        for name in self.args.topologies:
            await self.topology(name)


class Clients(R.Clients):
    """bench/wsclients.py processes (run.py's), on the load's cores of the topology."""

    def __init__(self, count: int, cores: set[int] | None):
        super().__init__(count)
        self.cores = cores

    async def __aenter__(self) -> Clients:
        cmd = [sys.executable, str(BENCH / "wsclients.py"), "--host", HOST]
        if self.cores:
            cmd = ["taskset", "-c", ",".join(str(c) for c in sorted(self.cores)), *cmd]
        for _ in range(self.count):
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                cwd=R.ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                start_new_session=True,
                limit=1 << 26,
            )
            R.STARTED.add(proc.pid, "wsclients")
            self.procs.append(proc)
        await asyncio.gather(*(self._read(p, 30) for p in self.procs))
        return self


async def converge_all(clients: Clients, final, *, n: int, limit: float) -> float | None:
    """When all ``n`` viewers are open and hold ``final`` (epoch seconds), or None."""
    deadline = time.monotonic() + limit
    while True:
        peeks = await clients.all({"cmd": "peek"}, timeout=60)
        if sum(p["open"] for p in peeks) >= n and all(set(p["last"]) <= {str(final)} for p in peeks):
            return time.time()
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(0.1)


def merge_counts(dicts: list[dict]) -> dict:
    total: Counter[str] = Counter()
    for d in dicts:
        total.update({str(k): v for k, v in d.items()})
    return dict(sorted(total.items()))


def proxy_delta(before: dict | None, after: dict) -> dict:
    if not before:
        return after
    out = {}
    for key, row in after.items():
        prev = before.get(key, {})
        out[key] = {k: v - prev.get(k, 0) if isinstance(v, int) else v for k, v in row.items()}
    return out


def summarize_profile(path: Path, top: int = 15) -> dict:
    """py-spy's raw output (collapsed stacks): the functions most often on top of a stack
    (self) and on a stack at all (total), as shares of the samples."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {"error": f"no profile at {path}"}
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or not stack:
            continue
        n = int(count)
        samples += n
        frames = [re.sub(r" \((.*?):\d+\)$", r" (\1)", f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    share = lambda c: {k: round(100 * v / samples, 1) for k, v in c.most_common(top)}  # noqa: E731
    return {"file": R.shown(path), "samples": samples, "self_pct": share(own), "total_pct": share(total)}


def uptime() -> str:
    with contextlib.suppress(OSError):
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


# -- report ---------------------------------------------------------------------------------


def print_line(top: str, scenario: str, r: dict) -> None:
    parts = []
    for cls, s in r["classes"].items():
        parts.append(f"{cls}:{s['count']} p99 {R.fmt_ms(s['p99'])}")
    check = r.get("check", {})
    if r.get("tappers"):
        parts.append("tappers " + ", ".join(f"{k}:{v['count']}" for k, v in r["tappers"]["outcomes"].items()))
    print(
        f"  {top:<9} {scenario:<18} {r['ok_rps']}/s ok, {r['answered_rps']}/s answered  "
        + "  ".join(parts)
        + f"  max {r['max_wait_ms']} ms  oversold {check.get('oversold')}  sold=paid {check.get('sold_equals_paid')}",
        flush=True,
    )


def print_storm(top: str, s: dict) -> None:
    b = s["buys"]
    print(
        f"  {top:<9} storm: {s['back']}/{s['lost']} back, all back {s['all_back_after_stop_s']}s after the stop "
        f"({s['all_back_after_up_s']}s after up), all on final {s['all_on_final_after_stop_s']}s; "
        f"buys {b['ok']}/{b['sent']} ok, p99 {R.fmt_ms(b['all']['p99'])} ms; failures {s['failures']}",
        flush=True,
    )


def class_rows(results: dict) -> list[list]:
    rows = []
    for top, res in results["topologies"].items():
        for scenario in ("capacity", "stampede", "overload"):
            r = res.get(scenario)
            if not r:
                continue
            label = scenario + (f" {r['offered_rps']:g}/s" if "offered_rps" in r else "")
            for cls, s in r["classes"].items():
                lat = [R.fmt_ms(s[k]) for k in ("p50", "p95", "p99", "max")]
                rows.append([top, label, cls, s["count"], *lat])
            c = r.get("check", {})
            rows.append(
                [
                    top,
                    label,
                    "all",
                    r["all"]["count"],
                    R.fmt_ms(r["all"]["p50"]),
                    R.fmt_ms(r["all"]["p95"]),
                    R.fmt_ms(r["all"]["p99"]),
                    f"{r['max_wait_ms']} | {r['ok_rps']} ok/s | sold {c.get('units_sold')}=paid {c.get('paid_units')}"
                    f" oversold {c.get('oversold')}",
                ]
            )
    return rows


def cpu_rows(results: dict) -> list[list]:
    rows = []
    roles = ("servers", "proxy", "postgres (this database)", "postgres (shared)", "redis", "load", "other")
    for top, res in results["topologies"].items():
        for scenario in ("capacity", "stampede", "overload"):
            r = res.get(scenario)
            if not r or "cpu_seconds" not in r:
                continue
            n = r["answered"] or 1
            cpu = r["cpu_seconds"]
            per = [round(1000 * cpu.get(role, 0.0) / n, 2) for role in roles]
            rows.append([top, scenario, n, *per, round(1000 * cpu["machine_busy"] / n, 2), round(cpu["wall"], 1)])
    return rows


def ratios(results: dict) -> dict:
    out = {}
    tops = results["topologies"]

    def most(top: str) -> float | None:
        res = tops.get(top, {})
        values = [res[s]["ok_rps"] for s in ("capacity", "overload") if res.get(s) and res[s].get("ok_rps")]
        return max(values) if values else None

    for a, b in (("two", "one"), ("two", "one-proxy"), ("one-proxy", "one")):
        ma, mb = most(a), most(b)
        if ma and mb:
            out[f"most buys/s {a} / {b}"] = round(ma / mb, 3)
        for scenario in ("capacity", "stampede", "overload"):
            ra, rb = tops.get(a, {}).get(scenario), tops.get(b, {}).get(scenario)
            pa, pb = (ra or {}).get("all", {}).get("p99"), (rb or {}).get("all", {}).get("p99")
            if pa and pb and math.isfinite(pa) and math.isfinite(pb):
                out[f"{scenario} p99 of every answer {a} / {b}"] = round(pa / pb, 3)
    return out


def targets(results: dict) -> list[list]:
    rows = []
    tops = results["topologies"]
    for top, res in tops.items():
        for scenario in ("stampede", "overload"):
            r = res.get(scenario)
            if not r:
                continue
            p99 = r["all"]["p99"]
            win = r["classes"].get("201", {}).get("p99")
            every = r["sent"] == r["answered"]
            maxw = r["max_wait_ms"]
            every_p99 = p99 is not None and p99 < 100
            rows.append([f"{scenario} {top}: p99 of every answer < 100 ms", R.fmt_ms(p99), every_p99])
            rows.append([f"{scenario} {top}: winners' p99 < 100 ms", R.fmt_ms(win), win is not None and win < 100])
            rows.append(
                [f"{scenario} {top}: no wait over 1 s", f"{maxw} ms", isinstance(maxw, (int, float)) and maxw <= 1000]
            )
            rows.append([f"{scenario} {top}: every tap answered", f"{r['answered']}/{r['sent']}", every])
            rows.append([f"{scenario} {top}: zero oversold", r["check"]["oversold"], r["check"]["oversold"] == 0])
        s = res.get("storm")
        if s:
            t = s["all_on_final_after_stop_s"]
            rows.append([f"storm {top}: all back on the final value within 10 s", f"{t} s", t is not None and t <= 10])
            p99 = s["buys"]["all"]["p99"]
            rows.append([f"storm {top}: buy p99 < 100 ms meanwhile", R.fmt_ms(p99), p99 is not None and p99 < 100])
    ratio = results["ratios"].get("most buys/s two / one")
    if ratio:
        rows.append(["two processes >= 1.8x one's most buys/s", f"{ratio}x", ratio >= 1.8])
    return [[name, value, "met" if ok else "MISSED"] for name, value, ok in rows]


def report(results: dict) -> str:
    m = results["machine"]
    parts = [
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gb']} GB; Python {m['versions']['python']}, "
        f"daphne {m['versions']['daphne']}, {m['versions'].get('postgresql', 'PostgreSQL ?')}, "
        f"Redis {m['versions'].get('redis', '?')}, {m.get('haproxy', 'HAProxy ?')}; "
        f"code {m.get('code', {}).get('commit', '?')[:10]}; uptime at start: {results.get('uptime_at_start')}"
    ]
    rows = class_rows(results)
    if rows:
        parts.append(
            "Answers by class (ms from the scheduled send; 'all' row: max wait, buys/s, database check)\n"
            + R.table(["topology", "scenario", "class", "count", "p50", "p95", "p99", "max"], rows)
        )
    codes = []
    for top, res in results["topologies"].items():
        for scenario in ("stampede", "overload"):
            if res.get(scenario):
                r = res[scenario]
                codes.append([top, scenario, ", ".join(f"{k}: {v}" for k, v in r["codes"].items())])
                if r["retry_after"] or r["errors"]:
                    codes.append(["", "", f"{r['retry_after'] or ''} {r['errors'] or ''}".strip()])
    if codes:
        parts.append("Answers by status and code\n" + R.table(["topology", "scenario", "codes"], codes))
    outcome_rows = []
    for top, res in results["topologies"].items():
        tappers = (res.get("stampede") or {}).get("tappers")
        if tappers:
            for outcome, s in tappers["outcomes"].items():
                lat = [R.fmt_ms(s[k]) for k in ("p50", "p95", "p99", "max")]
                outcome_rows.append([top, outcome, s["count"], *lat])
            tries = ", ".join(f"{k}: {v}" for k, v in tappers["tries"].items())
            outcome_rows.append([top, "tries", tries, "", "", "", ""])
    if outcome_rows:
        parts.append(
            "Stampede: each tapper's outcome (ms from the tap to the last answer; busy answers tried again as the "
            "page does)\n" + R.table(["topology", "outcome", "tappers", "p50", "p95", "p99", "max"], outcome_rows)
        )
    storms = []
    for top, res in results["topologies"].items():
        s = res.get("storm")
        if s:
            b = s["buys"]
            storms.append(
                [
                    top,
                    f"{s['back']}/{s['lost']}",
                    s["restart_s"],
                    s["all_back_after_stop_s"],
                    s["all_on_final_after_stop_s"],
                    s["all_on_final_after_up_s"],
                    f"{s['on_final']}/{s['viewers']}",
                    f"{b['ok']}/{b['sent']}",
                    R.fmt_ms(b["all"]["p50"]),
                    R.fmt_ms(b["all"]["p99"]),
                    ",".join(f"{k}:{v['count']}" for k, v in b["classes"].items()),
                    sum(s["failures"].values()),
                ]
            )
    if storms:
        parts.append(
            "Reconnect storm: the server process(es) restart under the viewers (seconds from the stop)\n"
            + R.table(
                [
                    "topology",
                    "back",
                    "restart s",
                    "all back s",
                    "all on final s",
                    "... after up s",
                    "on final",
                    "buys ok",
                    "buy p50",
                    "buy p99",
                    "buy classes",
                    "reconnect failures",
                ],
                storms,
            )
        )
    rows = cpu_rows(results)
    if rows:
        parts.append(
            "CPU per answer, ms (from /proc; 'other' is work on the machine that is not this run's)\n"
            + R.table(
                [
                    *("topology", "scenario", "answers", "servers", "haproxy", "pg (ours)", "pg (shared)", "redis"),
                    *("load", "other", "machine", "wall s"),
                ],
                rows,
            )
        )
    if results.get("ratios"):
        parts.append("Ratios\n" + R.table(["ratio", "value"], [[k, v] for k, v in results["ratios"].items()]))
    if results.get("targets"):
        targets_table = R.table(["target", "this run", ""], results["targets"])
        parts.append("Targets (issue 22; goals, not assertions)\n" + targets_table)
    for res in results["topologies"].values():
        for scenario in ("capacity", "overload", "storm"):
            for label, prof in (res.get(scenario, {}).get("profiles") or {}).items():
                if prof.get("samples"):
                    lines = [f"py-spy {label} during {scenario} ({prof['samples']} samples; {prof['file']}); self %:"]
                    lines += [f"  {v:5.1f}  {k}" for k, v in list(prof["self_pct"].items())[:10]]
                    lines += ["  total %:"] + [f"  {v:5.1f}  {k}" for k, v in list(prof["total_pct"].items())[:12]]
                    parts.append("\n".join(lines))
    problems = [f"{k} log: {v[:3]}" for k, v in results.get("server_log_problems", {}).items() if v]
    if problems:
        parts.append("Problems seen\n" + "\n".join(f"- {p}" for p in problems))
    if results.get("error"):
        parts.append(f"The run stopped early: {results['error'][:2000]}")
    return "\n\n".join(parts)


# -- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller counts")
    mode.add_argument("--smoke", action="store_true", help="tiny counts, end to end (for the test suite)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--topologies", default="one,two", help=f"comma-separated, in order: {', '.join(TOPOLOGIES)}")
    parser.add_argument("--overload-rate", type=float, help="overload: buys/s offered (default: 4x one's capacity)")
    parser.add_argument("--viewers", type=int, help="reconnect storm: viewers (overrides the profile)")
    parser.add_argument("--taps", type=int, help="stampede: buyers tapping (overrides the profile)")
    parser.add_argument("--daphne-args", help="more daphne options, space-separated (e.g. '--ping-interval 20')")
    parser.add_argument(
        "--storm-page",
        help="storm: the page's behaviour, e.g. 'reuse_token=0,poll_first_ms=0,poll_backoff=0,poll_wakes_socket=0' "
        "(the page before 2026-12-05); also poll_ms=, buy_rate= (default: the page's own)",
    )
    parser.add_argument(
        "--no-tap-retries",
        action="store_true",
        help="stampede: a refused tap is not tried again (the page tries a 503 overloaded or 429 up to 6 times)",
    )
    parser.add_argument(
        "--profile",
        choices=("cpu", "wall"),
        help="py-spy each server during capacity, the stampede, overload and the storm: cpu (the GIL holder's "
        "stacks) or wall (every busy thread's)",
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
    parser.add_argument(
        "--tree",
        help="run the servers, migrations and seed from this checkout of the project (e.g. a worktree of an "
        "older commit; default: this one)",
    )
    parser.add_argument("--out", help="JSON path (default bench/results/stampede-<timestamp>.json)")
    args = parser.parse_args()
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    args.topologies = [s.strip() for s in args.topologies.split(",") if s.strip()]
    for name, values, allowed in (("--only", args.only, SCENARIOS), ("--topologies", args.topologies, TOPOLOGIES)):
        unknown = set(values) - set(allowed)
        if unknown:
            parser.error(f"{name}: unknown {sorted(unknown)}; choose from {', '.join(allowed)}")
    if any(TOPOLOGIES[t]["proxy"] for t in args.topologies) and shutil.which("haproxy") is None:
        parser.error("the proxied topologies need Debian's haproxy (apt-get install -y haproxy)")
    profile_name = "smoke" if args.smoke else "quick" if args.quick else "default"
    profile = dict(PROFILES[profile_name])
    if args.viewers:
        profile["viewers"] = args.viewers
    if args.taps:
        profile["taps"] = args.taps
        profile["buyers"] = max(profile["buyers"], args.taps)
    profile["taps"] = min(profile["taps"], profile["buyers"])
    if args.tree:
        R.APP = Path(args.tree).resolve()
        if not (R.APP / "manage.py").is_file():
            parser.error(f"--tree: no manage.py in {R.APP}")
    if args.daphne_args is not None:
        DAPHNE_ARGS[:] = args.daphne_args.split()
    for item in filter(None, (args.storm_page or "").split(",")):
        key, _, value = item.partition("=")
        if key in ("reuse_token", "poll_backoff", "poll_wakes_socket"):
            profile[f"storm_{key}"] = value == "1"
        elif key == "poll_ms":
            profile["storm_poll_ms"] = float(value)
        elif key == "buy_rate":
            profile["storm_buy_rate"] = float(value)
        elif key == "poll_first_ms":
            lo, _, hi = value.partition("-")
            profile["storm_poll_first_ms"] = [float(lo), float(hi or lo)]
        else:
            parser.error(f"--storm-page: unknown {key!r}")

    if R.have_taskset():
        os.sched_setaffinity(0, {1})
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_path = Path(args.out).resolve() if args.out else BENCH / "results" / f"stampede-{stamp}.json"
    logs = out_path.with_name(out_path.stem + "-logs")
    logs.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "uptime_at_start": uptime(),
        "profile": profile_name,
        "parameters": profile,
        "scenarios_run": args.only,
        "topologies_run": args.topologies,
        "topologies": {},
        "server_log_problems": {},
        "_base_env": R.production_like(),
    }
    t_start = time.monotonic()
    status = 0
    print(
        f"bench/stampede.py --{profile_name}: {', '.join(args.only)} on {', '.join(args.topologies)}; "
        f"logs in {R.shown(logs)}\n{results['uptime_at_start']}",
        flush=True,
    )
    try:
        R.STARTED.redis_url = R.pick_redis_db(args.redis_db)
        database = f"cc_bench_{stamp.replace('-', '_')}_{os.getpid()}"
        R.create_database(database)
        results["machine"] = R.machine(R.STARTED.redis_url, database)
        if shutil.which("haproxy"):
            version = subprocess.run(["haproxy", "-v"], capture_output=True, text=True, timeout=10).stdout
            results["machine"]["haproxy"] = version.splitlines()[0] if version else "?"
        results["settings"] = R.public_settings(results["_base_env"], database, R.STARTED.redis_url)
        results["settings"]["TRUSTED_PROXIES"] = "127.0.0.1"
        results["haproxy_config"] = R.shown(SHIPPED_CONFIG)
        run = Run(args, profile, stamp, results, logs)
        asyncio.run(asyncio.wait_for(run.all(), profile["max_minutes"] * 60))
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything this run started", flush=True)
        results["error"] = "interrupted"
        status = 130
    except Exception as exc:
        print(f"\nbenchmark error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        results["error"] = f"{type(exc).__name__}: {exc}"
        status = 1
    finally:
        R.STARTED.stop_all()
        if R.STARTED.database:
            try:
                R.drop_database(R.STARTED.database)
            except Exception as exc:
                print(f"could not drop {R.STARTED.database}: {exc}", file=sys.stderr)
        if R.STARTED.redis_url:
            with contextlib.suppress(Exception):
                import redis

                redis.Redis.from_url(R.STARTED.redis_url).flushdb()
    results.pop("_base_env", None)
    results["duration_seconds"] = round(time.monotonic() - t_start, 1)
    results["uptime_at_end"] = uptime()
    if "machine" in results:
        results["ratios"] = ratios(results)
        results["targets"] = targets(results)
        print("\n" + report(results))
    print(f"\n{results['uptime_at_end']}\nfinished in {results['duration_seconds']}s")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {R.shown(out_path)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
