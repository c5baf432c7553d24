"""The ping benchmark (issue 16): ``POST /api/v1/geo/pings/`` at 10,000 pings a minute from
2,000 viewers against 50 venues, on one daphne process, as bench/run.py runs its servers
(production-like settings, a fresh PostgreSQL database it creates and drops, a Redis index
it flushes afterwards). Not a test: it never fails on a timing; it prints a table and writes
bench/results/pings-<timestamp>.json. Target (docs/geofences.md): p99 under 50 ms.

    .venv/bin/python bench/pings.py                 # 60 s at 10,000/min (about 2 minutes)
    .venv/bin/python bench/pings.py --seconds 20    # shorter
    BENCH_REDIS_DB=8 .venv/bin/python bench/pings.py --profile   # + an in-process pyinstrument profile

Viewers: each has location consent, a session token and a home venue; each ping puts them
at a random spot between the venue's centre and 1.5 km from it, with 5-60 m accuracy, so
pings enter, exit, straddle and dwell (dwell 60 s), and some fall outside every venue.
Venues: 50 polygons of 12 corners, 150 m across, 1 km apart, in a 10 x 5 grid (Berlin), one
in five with an announcement. Server CPU time is read from /proc before and after the run;
CPU per ping = that time / pings answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run as runner  # noqa: E402  (bench/run.py: servers, databases, cleanup)
from loadgen import build_request, open_loop  # noqa: E402

LAT0, LON0 = 52.50, 13.35
M_PER_DEG = 6_371_008.8 * math.pi / 180

SEED = r"""
import json, math, os, sys, time
import django
django.setup()
from importlib import import_module
from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.hashers import make_password
from django.http import HttpRequest
from django.utils import timezone
from datetime import timedelta
from apps.accounts.models import User
from apps.accounts.services import user_grant_role
from apps.consents.services import consent_set
from apps.geofences.services import venue_create

viewers, venues = int(sys.argv[1]), int(sys.argv[2])
LAT0, LON0, M = 52.50, 13.35, 6_371_008.8 * math.pi / 180
store = import_module(settings.SESSION_ENGINE).SessionStore
password = make_password("bench-password-not-secret")

def token(user):
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = "127.0.0.1"
    request.session = store()
    login(request, user, backend="apps.accounts.backends.ModelBackend")
    request.session.save()
    return request.session.session_key

User.objects.create(email="geo-creator@bench.test", password=password, display_name="Bench")
creator = user_grant_role(email="geo-creator@bench.test", role="creator", shop_name="Bench Pop-ups")
out = {"venues": [], "tokens": []}
for i in range(venues):
    lat = LAT0 + (i // 10) * 1000 / M
    lon = LON0 + (i % 10) * 1000 / (M * math.cos(math.radians(LAT0)))
    ring = []
    for k in range(13):
        a = 2 * math.pi * (k % 12) / 12
        ring.append([lon + 75 * math.cos(a) / (M * math.cos(math.radians(lat))), lat + 75 * math.sin(a) / M])
    extra = {}
    if i % 5 == 0:
        extra = {"announcement": "Doors at 8", "announce_radius_m": 1500,
                 "event_starts_at": timezone.now() + timedelta(days=1)}
    venue = venue_create(shop=creator.shop, name=f"Venue {i}", fence_kind="polygon",
                         fence={"type": "Polygon", "coordinates": [ring]}, dwell_seconds=60, **extra)
    out["venues"].append({"id": venue.pk, "lat": lat, "lon": lon})
users = User.objects.bulk_create(
    [User(email=f"geo-viewer-{n}@bench.test", password=password, display_name=f"V{n}") for n in range(viewers)]
)
for user in users:
    consent_set(user=user, kind="location", granted=True)
    out["tokens"].append(token(user))
print("SEED=" + json.dumps(out))
"""


PROFILE = r"""
import json, sys, time
import django
django.setup()
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pyinstrument import Profiler

bodies = json.loads(sys.argv[1])  # [[token, body], ...]
out = sys.argv[2]
client = Client(HTTP_HOST="127.0.0.1", REMOTE_ADDR="127.0.0.1")

def ping(token, body):
    response = client.post("/api/v1/geo/pings/", body, content_type="application/json",
                           HTTP_X_SESSION_TOKEN=token)
    assert response.status_code == 200, response.content

for token, body in bodies[:50]:  # warm up: the fence cache, connections
    ping(token, body)
with CaptureQueriesContext(connection) as queries:
    for token, body in bodies[50:150]:
        ping(token, body)
statements = len(queries) / 100
profiler = Profiler(interval=0.0002)
t0, c0 = time.perf_counter(), time.process_time()
profiler.start()
for token, body in bodies[150:]:
    ping(token, body)
profiler.stop()
n = len(bodies) - 150
wall, cpu = (time.perf_counter() - t0) / n * 1000, (time.process_time() - c0) / n * 1000
with open(out, "w") as f:
    f.write(profiler.output_text(unicode=False, color=False, show_all=False))
print("PROFILE=" + json.dumps({"pings": n, "wall_ms": round(wall, 3), "cpu_ms": round(cpu, 3),
                               "statements_per_ping": statements}))
"""


def _ping_body(rng: random.Random, venue: dict) -> bytes:
    distance = rng.choice([rng.uniform(0, 60), rng.uniform(60, 90), rng.uniform(90, 1500)])
    angle = rng.uniform(0, 2 * math.pi)
    lat = venue["lat"] + distance * math.sin(angle) / M_PER_DEG
    lon = venue["lon"] + distance * math.cos(angle) / (M_PER_DEG * math.cos(math.radians(venue["lat"])))
    accuracy = round(rng.uniform(5, 60), 1)
    return json.dumps({"lat": round(lat, 7), "lon": round(lon, 7), "accuracy_m": accuracy}).encode()


async def main_async(args, results: dict, logs: Path) -> None:
    database, redis_url = runner.STARTED.database, runner.STARTED.redis_url
    base = runner.production_like()
    base.update({"GEO_PING_RATE_LIMIT": "1000000/s", "CELERY_BROKER_URL": redis_url})
    env = runner.bench_env(base, database=database, redis_url=redis_url)
    t0 = time.monotonic()
    rc, out = await runner.run_cmd(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, timeout=300
    )
    if rc != 0:
        raise RuntimeError(f"migrate failed:\n{out[-2000:]}")
    rc, out = await runner.run_cmd(
        [sys.executable, "-c", SEED, str(args.viewers), str(args.venues)], env=env, timeout=900
    )
    if rc != 0:
        raise RuntimeError(f"seed failed:\n{out[-3000:]}")
    seed = json.loads(next(line for line in out.splitlines() if line.startswith("SEED="))[5:])
    results["setup_seconds"] = round(time.monotonic() - t0, 1)
    print(f"[setup] {args.venues} venues, {args.viewers} viewers in {results['setup_seconds']}s", flush=True)

    rng = random.Random(16)
    home = [seed["venues"][rng.randrange(len(seed["venues"]))] for _ in seed["tokens"]]
    tokens = seed["tokens"]
    rate = args.per_minute / 60
    async with runner.Server("daphne", env, logs, label="daphne-pings") as server:

        def request(i: int) -> bytes:
            viewer = rng.randrange(len(tokens))
            body = _ping_body(rng, home[viewer])
            headers = {"X-Session-Token": tokens[viewer], "Content-Type": "application/json"}
            return build_request("POST", "/api/v1/geo/pings/", runner.HOST, server.port, headers=headers, body=body)

        # Warm up (the fence cache, connections), then measure.
        await open_loop(host=runner.HOST, port=server.port, make_request=request, rate=rate, duration=3)
        cpu0 = runner.cpu_seconds(server.pid)
        result = await open_loop(
            host=runner.HOST, port=server.port, make_request=request, rate=rate, duration=args.seconds
        )
        cpu = runner.cpu_seconds(server.pid) - cpu0
        if args.profile:
            # In-process, under pyinstrument (the server's own process is not profiled: the
            # profiler's cost would be in the latencies): the same kind of pings through
            # Django's test client, against the same database and Redis.
            bodies = [
                [tokens[v], _ping_body(rng, home[v]).decode()]
                for v in (rng.randrange(len(tokens)) for _ in range(1150))
            ]
            text = logs / "pings-pyinstrument.txt"
            rc, out = await runner.run_cmd(
                [sys.executable, "-c", PROFILE, json.dumps(bodies), str(text)], env=env, timeout=600
            )
            if rc != 0:
                raise RuntimeError(f"profile failed:\n{out[-3000:]}")
            results["profile"] = {
                **json.loads(next(line for line in out.splitlines() if line.startswith("PROFILE="))[8:]),
                "text": str(text),
            }
    result.pop("distribution_ms", None)
    result["server_cpu_seconds"] = round(cpu, 3)
    result["server_cpu_ms_per_ping"] = runner.per_request_ms(cpu, result["answered"])
    result["server_cpu_pct"] = round(100 * cpu / result["elapsed_s"], 1)
    results["pings"] = result


def report(results: dict) -> str:
    r = results.get("pings")
    if not r:
        return "no result"
    lat = r["latency_ms"]
    rows = [
        ("offered", f"{r['offered_rps'] * 60:.0f}/min ({r['offered_rps']:.1f}/s) for {r['seconds']} s"),
        ("answered", f"{r['answered']} ({r['statuses']})"),
        ("latency p50", f"{lat['p50']} ms"),
        ("latency p95", f"{lat['p95']} ms"),
        ("latency p99", f"{lat['p99']} ms  (target < 50 ms: {'met' if (lat['p99'] or 1e9) < 50 else 'NOT met'})"),
        ("max", f"{r['max_ms']} ms"),
        ("server CPU", f"{r['server_cpu_pct']}% of one core, {r['server_cpu_ms_per_ping']} ms per ping"),
    ]
    if results.get("profile"):
        p = results["profile"]
        rows.append(
            (
                "in-process",
                f"{p['wall_ms']} ms wall, {p['cpu_ms']} ms CPU, {p['statements_per_ping']} statements per ping "
                f"({p['pings']} pings; pyinstrument: {p['text']})",
            )
        )
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--per-minute", type=int, default=10_000)
    parser.add_argument("--viewers", type=int, default=2_000)
    parser.add_argument("--venues", type=int, default=50)
    parser.add_argument("--redis-db", type=int, default=int(os.environ.get("BENCH_REDIS_DB", "8")))
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the load, profile 1,000 pings in-process with pyinstrument (text in the logs dir)",
    )
    parser.add_argument("--out")
    args = parser.parse_args()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logs = BENCH / "results" / f"pings-{stamp}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    out_path = Path(args.out).resolve() if args.out else BENCH / "results" / f"pings-{stamp}.json"
    results: dict = {"bench": "pings", "stamp": stamp, "args": vars(args)}
    status = 0
    try:
        runner.STARTED.redis_url = runner.pick_redis_db(args.redis_db)
        database = f"cc_bench_pings_{stamp.replace('-', '_')}_{os.getpid()}"
        runner.create_database(database)
        asyncio.run(asyncio.wait_for(main_async(args, results, logs), 1800))
    except KeyboardInterrupt:
        results["error"], status = "interrupted", 130
    except Exception as exc:
        print(f"benchmark error: {type(exc).__name__}: {exc}", file=sys.stderr)
        results["error"], status = f"{type(exc).__name__}: {exc}", 1
    finally:
        runner.STARTED.stop_all()
        if runner.STARTED.database:
            with contextlib.suppress(Exception):
                runner.drop_database(runner.STARTED.database)
        if runner.STARTED.redis_url:
            with contextlib.suppress(Exception):
                import redis

                redis.Redis.from_url(runner.STARTED.redis_url).flushdb()
    print("\n" + report(results))
    out_path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwrote {runner.shown(out_path)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
