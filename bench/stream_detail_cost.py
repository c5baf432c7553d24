"""What a poll of ``GET /api/v1/streams/<id>/`` costs the server, in process: the request
the stream page makes every few seconds while its socket is down (static/js/stream.js),
through ``creatorcommerce.asgi.application`` as daphne or uvicorn call it (HTTP parsing and
socket writes excluded), one after the other on one event loop, anonymous like most viewers
and from 2,000 client addresses in turn (the anonymous throttle keeps a short history per
address, as in a storm, rather than one long one).
CPU is the process's (``time.process_time()``: every thread, the request pool's too); the
machine is shared, so CPU per call is the figure to trust, not wall time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cc_scratch REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/stream_detail_cost.py [--n 300] [--rounds 3] [--stream ID] [--profile]

The stream: a live drop of one shop with eight pinned SKUs (``--pins``: fewer; stock from
0 to 1,000, one sold out, variant titles and products' titles), an open flash deal on two
of them, a closed deal and a scheduled one on others; created through the project's services
in the configured database (migrated first; use a scratch database) unless ``--stream``
names one made by an earlier run, so that two trees (``BENCH_APP_TREE=<checkout>``: another
checkout's code, e.g. a ``git worktree`` of main) answer about the very same rows; the
SHA-256 of the response body is printed, to check they answer the same bytes. Queries per
GET are counted with Django's ``CaptureQueriesContext`` (through the test client, in one
thread). ``--profile`` adds a pyinstrument profile of ``--n`` GETs through the test client.

Prints a table and writes bench/results/stream_detail_cost-<timestamp>.json. Never asserts
on a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
ROOT = Path(os.environ.get("BENCH_APP_TREE") or HERE)
sys.path.insert(0, str(ROOT))
CALLED_FROM = Path.cwd()
os.chdir(ROOT)  # something in Django's start-up puts the working directory first on sys.path
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorcommerce.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1")
os.environ.setdefault("EMBEDDED_SCHEDULER", "0")
os.environ.setdefault("LOG_LEVEL", "WARNING")


VIEWERS = 2000  # client addresses the polls come from, one after the other (a storm's viewers)


def address(i: int) -> str:
    return f"10.0.{i % VIEWERS // 250}.{i % 250 + 1}"


def scope(path: str, client: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"accept", b"application/json")],
        "client": (client, 50000),
        "server": ("testserver", 80),
    }


async def get(app, path: str, client: str = "127.0.0.1") -> tuple[int, bytes]:
    done = {"sent": False}

    async def receive():
        if not done["sent"]:
            done["sent"] = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()

    status, body = [], []

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope(path, client), receive, send)
    return status[0], b"".join(body)


STOCKS = [120, 0, 3, 45, 1000, 7, 250, 60]


def seed(pins: int) -> int:
    """A live drop as the stream page shows one: up to eight pins, deals in every state (those
    on the pins it has: an open deal on the first)."""
    from django.db import transaction
    from django.utils import timezone

    from apps.accounts.models import User
    from apps.accounts.services import user_grant_role
    from apps.catalog.services import product_create
    from apps.streams.models import Stream
    from apps.streams.services import deal_close, deal_open, deal_schedule, pin_add, stream_start
    from creatorcommerce.spine import fanout

    stamp = f"{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}"
    creator = User.objects.create_user(email=f"bench-detail-{stamp}@example.test", password="x")
    user_grant_role(email=creator.email, role="creator", shop_name=f"Detail bench {stamp}")
    shop = User.objects.get(pk=creator.pk).shop
    skus = []
    for i, stock in enumerate(STOCKS[:pins]):
        product = product_create(
            shop=shop,
            title=f"Product {i}",
            image_url=f"https://cdn.example.test/p{i}.jpg" if i % 2 else "",
            skus=[
                {
                    "code": f"D{i}-{stamp}",
                    "price": f"{10 + i}.50",
                    "stock": stock,
                    "title": f"Variant {i}" if i % 3 == 0 else "",
                    "per_buyer_limit": 3 if i == 2 else None,
                }
            ],
        )
        skus.append(product.skus.get())
    now = timezone.now()
    stream = Stream.objects.create(
        shop=shop,
        title="Detail bench live",
        description="What a poll reads",
        starts_at=now,
        hls_url="https://media.example.test/live/1/index.m3u8",
    )
    stream_start(stream=stream)
    for sku in skus:
        pin_add(stream=stream, sku=sku)

    def deal(sku, price, quantity, opens_at, closes_at, **terms):
        return deal_schedule(
            stream=stream, sku=sku, price=price, quantity=quantity, opens_at=opens_at, closes_at=closes_at, **terms
        )

    later = now + timedelta(days=2)
    with transaction.atomic():
        deal_open(deal=deal(skus[0], "5.00", 20, now, later, per_buyer_limit=2), now=now)
        if pins > 4:
            deal_open(deal=deal(skus[4], "9.99", 100, now, later), now=now)
    if pins > 3:
        with transaction.atomic():
            closed = deal_open(deal=deal(skus[3], "8.00", 5, now, later), now=now)
        deal_close(deal=closed)
    if pins > 6:
        deal(skus[6], "4.00", 10, now + timedelta(days=1), later)
    fanout.drain()
    return stream.pk


def count_queries(path: str, n: int, profile: bool) -> dict:
    """Queries per GET (and a profile) through the test client, in this one thread."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.get(path, REMOTE_ADDR=address(0))
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, REMOTE_ADDR=address(1))
    sql = [q["sql"] for q in captured.captured_queries]
    out = {"queries": len(captured), "sql": sql, "status": response.status_code}
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        for i in range(n):
            client.get(path, REMOTE_ADDR=address(i))
        profiler.stop()
        out["profile"] = profiler.output_text(unicode=False, color=False, show_all=False)
    return out


async def run(args) -> dict:
    import django

    django.setup()
    from django.core.management import call_command

    from creatorcommerce.asgi import application

    await asyncio.to_thread(call_command, "migrate", verbosity=0)
    stream_id = args.stream or await asyncio.to_thread(seed, args.pins)
    path = f"/api/v1/streams/{stream_id}/"
    status, body = await get(application, path, address(VIEWERS - 1))
    if status != 200:
        raise SystemExit(f"{path} answered {status}: {body[:300]!r}")
    for i in range(50):  # warm up: routes, caches, prepared statements
        await get(application, path, address(i))
    rounds = []
    for _ in range(args.rounds):
        statuses: dict[int, int] = {}
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for i in range(args.n):
            code, _ = await get(application, path, address(i))
            statuses[code] = statuses.get(code, 0) + 1
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        cpu_ms, wall_ms = round(cpu / args.n * 1000, 4), round(wall / args.n * 1000, 4)
        rounds.append({"n": args.n, "statuses": statuses, "cpu_ms": cpu_ms, "wall_ms": wall_ms})
    queries = await asyncio.to_thread(count_queries, path, args.n, args.profile)
    return {
        "stream": stream_id,
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_bytes": len(body),
        "pins": len(json.loads(body)["pins"]),
        "rounds": rounds,
        "cpu_ms_median": statistics.median(r["cpu_ms"] for r in rounds),
        "wall_ms_median": statistics.median(r["wall_ms"] for r in rounds),
        **queries,
    }


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True)
        return done.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300, help="GETs per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stream", type=int, help="a stream an earlier run made (else a new one is made)")
    parser.add_argument("--pins", type=int, default=8, choices=range(1, 9), help="pins of a new stream (1-8)")
    parser.add_argument("--profile", action="store_true", help="pyinstrument over --n GETs (test client)")
    parser.add_argument("--label", default="", help="a name for this run in the JSON (e.g. before, after)")
    parser.add_argument("--out")
    args = parser.parse_args()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = CALLED_FROM / args.out if args.out else HERE / "bench" / "results" / f"stream_detail_cost-{stamp}.json"
    uptime0 = _uptime()
    results = asyncio.run(run(args))
    results = {
        "label": args.label,
        "tree": str(ROOT),
        "commit": _git("rev-parse", "--short", "HEAD"),
        **results,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "uptime_before": uptime0,
            "uptime_after": _uptime(),
        },
    }
    print(f"tree {results['tree']} ({results['commit']}), stream {results['stream']}, {results['pins']} pins")
    print(f"{'GET /api/v1/streams/<id>/':28} {'statuses':14} {'CPU ms per GET':>14} {'wall ms':>9}")
    for i, row in enumerate(results["rounds"], 1):
        print(f"{'round ' + str(i):28} {json.dumps(row['statuses']):14} {row['cpu_ms']:14.3f} {row['wall_ms']:9.3f}")
    print(f"{'median':28} {'':14} {results['cpu_ms_median']:14.3f} {results['wall_ms_median']:9.3f}")
    print(f"queries per GET: {results['queries']}; body {results['body_bytes']} bytes, sha256 {results['body_sha256']}")
    print(f"uptime before: {results['machine']['uptime_before']}")
    print(f"uptime after:  {results['machine']['uptime_after']}")
    if results.get("profile"):
        print(results["profile"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
