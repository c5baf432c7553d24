"""In-process cost of one buy: statements and PostgreSQL round trips, Python calls, CPU and
median time through the service and through the full HTTP stack (Django test client:
middleware, DRF, JSON), and where the time goes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cc_bench \\
        .venv/bin/python bench/buy_inprocess.py [--n 300] [--lines 3] [--profile] [--cprofile]

``--lines 3`` buys three SKUs of one product in one order (the ``lines`` body; a checkout
whose ``order_place`` has no ``lines`` refuses it); ``--per-buyer-limit`` puts a per-buyer
limit on the SKUs (an allowance claim per line, as bench/run.py's seed does). ``--tree``
imports the project from another checkout (a ``git worktree`` of an older commit: bench/compare.py
measures two commits in one sitting). ``--profile`` writes a pyinstrument profile of the HTTP
buys, ``--cprofile`` cProfile's top functions of both paths by CPU time (and the calls per
buy), each path's raw profile next to the JSON (``<out>-service.prof``, ``-http.prof``: compare
two with bench/profile_diff.py).

Creates its own database objects in the configured database (use a scratch database);
prints a table and writes bench/results/buy_inprocess-<timestamp>.json (``--out`` to choose).
Never asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorcommerce.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("BUY_RATE_LIMIT", "1000000/min")

STATEMENTS = {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}


@contextlib.contextmanager
def round_trips(connection):
    """Count the messages this process sends PostgreSQL that each wait for an answer (a
    simple ``Query``, or an extended-protocol exchange ending in ``Sync``): BEGIN and COMMIT
    included, which Django's query log leaves out. From libpq's own trace of the connection
    (psycopg ``PGconn.trace``). Yields a dict that holds ``count`` once the block is done."""
    out: dict = {"count": None}
    if connection.vendor != "postgresql":
        yield out
        return
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile(mode="w+b") as trace:
        try:
            pgconn.trace(trace.fileno())
        except Exception as exc:  # a libpq without tracing: say so, count nothing
            out["error"] = f"{type(exc).__name__}: {exc}"
            yield out
            return
        try:
            yield out
        finally:
            pgconn.untrace()
        trace.seek(0)
        lines = trace.read().decode("utf-8", "replace").splitlines()
    sent = [ln.split("\t") for ln in lines]
    # libpq's trace: [timestamp] direction length message ...; F is what the client sent.
    count = 0
    for fields in sent:
        words = " ".join(fields).split()
        if "F" in words:
            message = words[words.index("F") + 2] if len(words) > words.index("F") + 2 else ""
            count += message in {"Query", "Sync"}
    out["count"] = count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--lines", type=int, default=1, help="SKUs per buy (one unit each): 1 (the v1 body) or more")
    parser.add_argument("--per-buyer-limit", type=int, help="a per-buyer limit on every SKU bought (default: none)")
    parser.add_argument("--tree", help="import the project from this checkout (default: this one)")
    parser.add_argument("--profile", action="store_true", help="write a pyinstrument profile of the HTTP buys")
    parser.add_argument("--cprofile", action="store_true", help="cProfile both paths: top functions, calls per buy")
    parser.add_argument(
        "--paths",
        default="service,http",
        help="which timed loops run (comma-separated): fewer for an instruction count under valgrind, "
        "where the difference between two --n is the cost of the buys alone",
    )
    parser.add_argument("--out", help="JSON path (default bench/results/buy_inprocess-<timestamp>.json)")
    args = parser.parse_args()
    args.paths = {p.strip() for p in args.paths.split(",") if p.strip()}

    tree = Path(args.tree).resolve() if args.tree else BENCH_ROOT
    out = (
        Path(args.out).resolve()
        if args.out
        else BENCH_ROOT / "bench" / "results" / f"buy_inprocess-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    sys.path.insert(0, str(tree))
    # Also the working directory: a library on the way (Celery's loader) puts it first on
    # sys.path, and the project must not come from this checkout when --tree names another.
    os.chdir(tree)

    import inspect

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

    if args.lines > 1 and "lines" not in inspect.signature(order_place).parameters:
        parser.error(f"--lines {args.lines}: the buy in {tree} takes one SKU only")

    call_command("migrate", verbosity=0)
    celery_app.conf.task_always_eager = False  # capture runs in a worker, not on the buy path
    from creatorcommerce.spine import events, fanout

    # Handlers run in a Celery worker and fan-out is scheduled on the server's event loop
    # without the request waiting (creatorcommerce/spine/events.py); neither is on the
    # request path in production, so neither is timed here (bench/ measures fan-out).
    events.enqueue_handlers = lambda event: None
    fanout.fan_out = lambda event: None

    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"  # runs side by side share a database
    creator = User.objects.create_user(email=f"bench-creator-{stamp}@example.test", password="x")
    user_grant_role(email=creator.email, role="creator")
    stock = 6 * args.n + 10  # every buy below takes one unit of each SKU
    sku_specs = [
        {
            "code": f"BENCH-{stamp}" + (f"-{i}" if args.lines > 1 else ""),
            "price": "10.00",
            "stock": stock,
            **({"per_buyer_limit": args.per_buyer_limit} if args.per_buyer_limit else {}),
        }
        for i in range(args.lines)
    ]
    product = product_create(shop=User.objects.get(pk=creator.pk).shop, title="Bench tee", skus=sku_specs)
    codes = sorted(product.skus.values_list("code", flat=True))
    buyer = User.objects.create_user(email=f"bench-buyer-{stamp}@example.test", password="x")
    payment_method_add(user=buyer, token="tok_ok")
    address_set(user=buyer, name="B", line1="1", city="C", postal_code="1", country="DE")

    if args.lines == 1:
        body = {"sku": codes[0], "quantity": 1}
        place = {"sku_code": codes[0], "quantity": 1}
    else:
        body = {"lines": [{"sku": code, "quantity": 1} for code in codes]}
        place = {"lines": [(code, 1) for code in codes]}
    fingerprint = request_fingerprint(body)

    def service_buy(i):
        outcome = order_place(buyer=buyer, idempotency_key=f"svc-{stamp}-{i:06d}", fingerprint=fingerprint, **place)
        assert outcome.status == 201, outcome.body
        return outcome

    client = Client()
    client.force_login(buyer)

    def http_buy(i):
        response = client.post(
            "/api/v1/orders/",
            body,
            content_type="application/json",
            headers={"Idempotency-Key": f"http-{stamp}-{i:06d}"},
        )
        assert response.status_code == 201, response.content
        return response

    service_buy(-1)  # warm up: signing key, caches
    http_buy(-1)
    with CaptureQueriesContext(connection) as ctx, round_trips(connection) as trips:
        service_buy(-2)
    queries = [q["sql"] for q in ctx.captured_queries if q["sql"].split()[0] in STATEMENTS]
    with CaptureQueriesContext(connection) as ctx, round_trips(connection) as http_trips:
        http_buy(-2)
    http_queries = [q["sql"] for q in ctx.captured_queries if q["sql"].split()[0] in STATEMENTS]

    def timed(fn, n, start):
        # CPU time as well as wall time: on a shared VM the wall clock includes the
        # moments the machine is not ours; process CPU time does not.
        samples = []
        cpu0 = time.process_time()
        for i in range(start, start + n):
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
        "tree": str(tree),
        "commit": _commit(tree),
        "database": connection.vendor,
        "n": args.n,
        "lines": args.lines,
        "per_buyer_limit": args.per_buyer_limit,
        "queries_per_buy": len(queries),
        "round_trips_per_buy": trips["count"],
        "queries": queries,
        "queries_per_http_buy": len(http_queries),
        "round_trips_per_http_buy": http_trips["count"],
        "http_queries": http_queries,
    }
    for path, fn in (("service", service_buy), ("http", http_buy)):
        if path in args.paths:
            results[path] = timed(fn, args.n, 0)
    if args.cprofile:
        results["cprofile"] = {
            "service": _cprofile(service_buy, args.n, args.n, tree, out.with_name(out.stem + "-service.prof")),
            "http": _cprofile(http_buy, args.n, args.n, tree, out.with_name(out.stem + "-http.prof")),
        }
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
        for i in range(2 * args.n, 3 * args.n):
            http_buy(i)
        profiler.stop()
        text = out.with_name(out.stem + "-pyinstrument.txt")
        text.parent.mkdir(parents=True, exist_ok=True)
        text.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        results["profile"] = str(text)

    print(
        f"tree: {tree} ({results['commit'][:7]})   database: {results['database']}   lines: {args.lines}"
        f"   per-buyer limit: {args.per_buyer_limit}"
    )
    print(
        f"statements per buy: {results['queries_per_buy']} (HTTP {results['queries_per_http_buy']})   "
        f"round trips: {results['round_trips_per_buy']} (HTTP {results['round_trips_per_http_buy']})"
    )
    print(f"{'path':<10}{'cpu ms':>10}{'median ms':>12}{'p95 ms':>10}{'p99 ms':>10}{'calls':>10}")
    for path in ("service", "http"):
        if path not in results:
            continue
        r = results[path]
        calls = results.get("cprofile", {}).get(path, {}).get("calls_per_buy", "")
        print(f"{path:<10}{r['cpu_ms']:>10}{r['median_ms']:>12}{r['p95_ms']:>10}{r['p99_ms']:>10}{calls:>10}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}" + (f" and {results['profile']}" if args.profile else ""))


def _commit(tree: Path) -> str:
    import subprocess

    with contextlib.suppress(Exception):
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    return ""


def _cprofile(fn, n: int, start: int, tree: Path, dump: Path) -> dict:
    """``n`` calls of ``fn`` under cProfile, timed by the thread's CPU clock (the buy runs on
    this thread; waits for PostgreSQL and Redis do not count): Python calls per buy, and the
    top functions by own time (everything) and by cumulative time (the project's own code),
    per buy. The raw profile goes to ``dump``."""
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    for i in range(start, start + n):
        fn(i)
    profiler.disable()
    dump.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(dump))
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total_calls = stats.total_calls  # type: ignore[attr-defined]
    prefix = str(tree) + os.sep

    def row(key, value, ms_index):
        filename, line, name = key
        shown = filename[len(prefix) :] if filename.startswith(prefix) else filename.rsplit("site-packages/", 1)[-1]
        return {
            "function": f"{shown}:{line}({name})",
            "calls_per_buy": round(value[1] / n, 2),
            "ms_per_buy": round(1000 * value[ms_index] / n, 4),
        }

    entries = stats.stats.items()  # type: ignore[attr-defined]
    by_own = sorted(entries, key=lambda kv: kv[1][2], reverse=True)[:30]
    own_code = [kv for kv in entries if kv[0][0].startswith(prefix)]
    by_cum = sorted(own_code, key=lambda kv: kv[1][3], reverse=True)[:40]
    return {
        "calls_per_buy": round(total_calls / n),
        "profiled_cpu_ms_per_buy": round(1000 * stats.total_tt / n, 3),  # type: ignore[attr-defined]
        "raw": str(dump),
        "top_own_time": [row(k, v, 2) for k, v in by_own],
        "top_cumulative_project": [row(k, v, 3) for k, v in by_cum],
    }


if __name__ == "__main__":
    main()
