"""In-process cost of one buy: queries, median time through the service and through the
full HTTP stack (Django test client: middleware, DRF, JSON), and a profile of where the
time goes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cc_bench \
        .venv/bin/python bench/buy_inprocess.py [--n 300] [--profile]

Creates its own database objects in the configured database (use a scratch database);
prints a table and writes bench/results/buy_inprocess-<timestamp>.json. Never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorcommerce.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("BUY_RATE_LIMIT", "1000000/min")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="write a pyinstrument profile of the HTTP buys")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from apps.accounts.models import User
    from apps.accounts.services import user_grant_role
    from apps.catalog.services import product_create
    from apps.orders.services import address_set, order_place, payment_method_add, request_fingerprint
    from creatorcommerce.celery import app as celery_app

    call_command("migrate", verbosity=0)
    celery_app.conf.task_always_eager = False  # capture runs in a worker, not on the buy path
    from creatorcommerce.spine import events, fanout

    # Handlers run in a Celery worker and fan-out is scheduled on the server's event loop
    # without the request waiting (creatorcommerce/spine/events.py); neither is on the
    # request path in production, so neither is timed here (bench/ measures fan-out).
    events.enqueue_handlers = lambda event: None
    fanout.fan_out = lambda event: None

    stamp = time.strftime("%Y%m%d-%H%M%S")
    creator = User.objects.create_user(email=f"bench-creator-{stamp}@example.test", password="x")
    user_grant_role(email=creator.email, role="creator")
    product = product_create(
        shop=User.objects.get(pk=creator.pk).shop,
        title="Bench tee",
        skus=[{"code": f"BENCH-{stamp}", "price": "10.00", "stock": 10 * args.n + 10}],
    )
    code = product.skus.get().code
    buyer = User.objects.create_user(email=f"bench-buyer-{stamp}@example.test", password="x")
    payment_method_add(user=buyer, token="tok_ok")
    address_set(user=buyer, name="B", line1="1", city="C", postal_code="1", country="DE")

    def service_buy(i):
        body = {"sku": code, "quantity": 1}
        return order_place(
            buyer=buyer,
            sku_code=code,
            quantity=1,
            idempotency_key=f"svc-{stamp}-{i:06d}",
            fingerprint=request_fingerprint(body),
        )

    client = Client()
    client.force_login(buyer)

    def http_buy(i):
        response = client.post(
            "/api/v1/orders/",
            {"sku": code, "quantity": 1},
            content_type="application/json",
            headers={"Idempotency-Key": f"http-{stamp}-{i:06d}"},
        )
        assert response.status_code == 201, response.content
        return response

    service_buy(-1)  # warm up: signing key, caches
    with CaptureQueriesContext(connection) as ctx:
        service_buy(-2)
    queries = [
        q["sql"]
        for q in ctx.captured_queries
        if q["sql"].split()[0] in {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}
    ]

    def timed(fn, n):
        # CPU time as well as wall time: on a shared VM the wall clock includes the
        # moments the machine is not ours; process CPU time does not.
        samples = []
        cpu0 = time.process_time()
        for i in range(n):
            t0 = time.perf_counter()
            fn(i)
            samples.append((time.perf_counter() - t0) * 1000)
        cpu_ms = (time.process_time() - cpu0) * 1000 / n
        samples.sort()
        return {
            "cpu_ms": round(cpu_ms, 3),
            "median_ms": round(statistics.median(samples), 3),
            "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 3),
            "p99_ms": round(samples[int(0.99 * (len(samples) - 1))], 3),
        }

    results = {
        "database": connection.vendor,
        "queries_per_buy": len(queries),
        "queries": queries,
        "service": timed(service_buy, args.n),
        "http": timed(http_buy, args.n),
    }
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
        for i in range(args.n):
            http_buy(args.n + i)
        profiler.stop()
        out = ROOT / "bench" / "results" / f"buy_profile-{stamp}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        results["profile"] = str(out.relative_to(ROOT))

    print(f"database: {results['database']}   queries per buy: {results['queries_per_buy']}")
    print(f"{'path':<10}{'cpu ms':>10}{'median ms':>12}{'p95 ms':>10}{'p99 ms':>10}")
    for path in ("service", "http"):
        r = results[path]
        print(f"{path:<10}{r['cpu_ms']:>10}{r['median_ms']:>12}{r['p95_ms']:>10}{r['p99_ms']:>10}")
    out = ROOT / "bench" / "results" / f"buy_inprocess-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out.relative_to(ROOT)}" + (f" and {results['profile']}" if args.profile else ""))


if __name__ == "__main__":
    main()
