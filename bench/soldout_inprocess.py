"""What a refused tap costs the server, in process: a sold-out buy answered from memory, the
same answered by the database, a 503 overloaded refusal, and for scale ``GET /livez`` and a
winning buy. Every request goes through ``creatorcommerce.asgi.application`` as daphne or
uvicorn call it (HTTP parsing and socket writes excluded), one after the other on one event
loop; CPU is the process's (``time.process_time()``: every thread, the request pool's too).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cc_scratch REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/soldout_inprocess.py [--n 2000] [--rounds 3]

Migrates the configured database and creates its own objects in it (use a scratch database);
prints a table and writes bench/results/soldout_inprocess-<timestamp>.json. Never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from importlib import import_module
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorcommerce.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1")
os.environ.setdefault("BUY_RATE_LIMIT", "1000000/s")
os.environ.setdefault("EMBEDDED_SCHEDULER", "0")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def scope(method: str, path: str, headers: list, body: bytes) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def request(app, method: str, path: str, headers: list, body: bytes = b"") -> int:
    done = {"sent": False}

    async def receive():
        if not done["sent"]:
            done["sent"] = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()

    status = []

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope(method, path, headers, body), receive, send)
    return status[0]


async def timed(label: str, n: int, make, expect: int) -> dict:
    """``n`` requests one after the other: CPU and wall time per request."""
    statuses: dict[int, int] = {}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(n):
        status = await make(i)
        statuses[status] = statuses.get(status, 0) + 1
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "kind": label,
        "n": n,
        "statuses": statuses,
        "expected": expect,
        "cpu_ms": round(cpu / n * 1000, 4),
        "wall_ms": round(wall / n * 1000, 4),
    }


async def run(args) -> dict:
    import logging

    import django

    django.setup()
    logging.getLogger("django.request").setLevel(logging.ERROR)  # a 409 per refused buy
    from django.conf import settings
    from django.contrib.auth import login
    from django.core.management import call_command
    from django.http import HttpRequest

    from apps.accounts.models import User
    from apps.accounts.services import user_grant_role
    from apps.catalog.services import product_create
    from apps.orders.services import address_set, payment_method_add
    from creatorcommerce import admission
    from creatorcommerce.asgi import application

    await asyncio.to_thread(call_command, "migrate", verbosity=0)
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"

    def setup():
        creator = User.objects.create_user(email=f"bench-creator-{stamp}@example.test", password="x")
        user_grant_role(email=creator.email, role="creator")
        shop = User.objects.get(pk=creator.pk).shop
        product_create(
            shop=shop,
            title="Bench drop",
            skus=[
                {"code": f"GONE-{stamp}", "price": "10.00", "stock": 1},
                {"code": f"PLENTY-{stamp}", "price": "10.00", "stock": args.n * args.rounds + 10},
            ],
        )
        buyer = User.objects.create_user(email=f"bench-buyer-{stamp}@example.test", password="x")
        payment_method_add(user=buyer, token="tok_ok")
        address_set(user=buyer, name="B", line1="1", city="C", postal_code="1", country="DE")
        req = HttpRequest()
        req.META["REMOTE_ADDR"] = "127.0.0.1"
        req.session = import_module(settings.SESSION_ENGINE).SessionStore()
        login(req, buyer, backend="apps.accounts.backends.ModelBackend")
        req.session.save()
        return shop.slug, req.session.session_key

    slug, token = await asyncio.to_thread(setup)
    json_type = (b"content-type", b"application/json")

    def buy(code: str, key: str) -> tuple[list, bytes]:
        headers = [json_type, (b"x-session-token", token.encode()), (b"idempotency-key", key.encode())]
        return headers, json.dumps({"sku": code, "quantity": 1, "shop": slug}).encode()

    gone, plenty = f"GONE-{stamp}", f"PLENTY-{stamp}"
    # The last unit, through the database: the route is learnt and the zero heard.
    assert await request(application, "POST", "/api/v1/orders/", *buy(gone, f"first-{stamp}")) == 201
    for i in range(50):  # warm up every path
        await request(application, "POST", "/api/v1/orders/", *buy(plenty, f"warm-{stamp}-{i}"))
        await request(application, "GET", "/livez", [])

    async def memory(i, r):
        return await request(application, "POST", "/api/v1/orders/", *buy(gone, f"mem-{stamp}-{r}-{i}"))

    async def database(i, r):
        settings.SOLDOUT_MEMORY = False
        try:
            return await request(application, "POST", "/api/v1/orders/", *buy(gone, f"db-{stamp}-{r}-{i}"))
        finally:
            settings.SOLDOUT_MEMORY = True

    async def overloaded(i, r):
        state = admission.admission()
        state.in_flight += settings.ADMISSION_MAX_IN_FLIGHT  # as if the pool were full
        try:
            return await request(application, "POST", "/api/v1/orders/", *buy(plenty, f"busy-{stamp}-{r}-{i}"))
        finally:
            state.in_flight -= settings.ADMISSION_MAX_IN_FLIGHT

    async def livez(i, r):
        return await request(application, "GET", "/livez", [])

    async def winner(i, r):
        return await request(application, "POST", "/api/v1/orders/", *buy(plenty, f"win-{stamp}-{r}-{i}"))

    kinds = [
        ("sold out, from memory", memory, 409, args.n),
        ("sold out, from the database", database, 409, max(1, args.n // 4)),
        ("503 overloaded", overloaded, 503, args.n),
        ("GET /livez", livez, 200, args.n),
        ("a winning buy (201)", winner, 201, max(1, args.n // 4)),
    ]
    rounds = []
    for r in range(args.rounds):
        for label, fn, expect, n in kinds:
            rounds.append(await timed(label, n, lambda i, fn=fn, r=r: fn(i, r), expect))
    summary = []
    for label, _, _, n in kinds:
        rows = [x for x in rounds if x["kind"] == label]
        summary.append(
            {
                "kind": label,
                "n_per_round": n,
                "statuses": rows[-1]["statuses"],
                "cpu_ms": [x["cpu_ms"] for x in rows],
                "cpu_ms_median": statistics.median(x["cpu_ms"] for x in rows),
                "wall_ms_median": statistics.median(x["wall_ms"] for x in rows),
            }
        )
    return {"summary": summary, "rounds": rounds}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000, help="requests per kind and round (a quarter for DB paths)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"soldout_inprocess-{stamp}.json"
    load0 = os.getloadavg()
    results = asyncio.run(run(args))
    results["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load0],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(f"{'request':32} {'statuses':18} {'CPU ms per request (rounds)':34} median   wall ms")
    for row in results["summary"]:
        rounds = ", ".join(f"{x:.3f}" for x in row["cpu_ms"])
        print(
            f"{row['kind']:32} {json.dumps(row['statuses']):18} {rounds:34} "
            f"{row['cpu_ms_median']:.3f}    {row['wall_ms_median']:.3f}"
        )
    machine = results["machine"]
    print(f"load average before {machine['load_average_before']}, after {machine['load_average_after']}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
