"""What observing a request costs (docs/operations.md, "Metrics"): the request id, the
latency histogram by route, the buy's outcome counter, the event's request id, and the JSON
access line when it is on, in-process.

    .venv/bin/python bench/metrics_cost.py [--n 20000] [--multiprocess]

Two parts:

- **pieces**: each piece a request pays, timed alone in a loop (CPU per call): the ASGI
  wrapper (``ObservedHTTP``) around an application that answers at once, the middleware's
  part, a buy's outcome counted, the request id read for an event, one JSON access line
  written to /dev/null;
- **livez**: ``GET /livez`` through the whole ASGI application (the thread hop, every
  middleware), with the observation and without it (the same chain less the middleware,
  not wrapped), interleaved in rounds; CPU per request of the process.

``--multiprocess`` runs with ``PROMETHEUS_MULTIPROC_DIR`` set (a temporary directory), as
several server processes behind a proxy do: every write goes to a memory-mapped file.
Needs no database. Prints a table and writes bench/results/metrics_cost-<timestamp>.json.
Never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def per_call_us(fn, n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - started) / n * 1e6


async def per_call_async_us(fn, n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        await fn()
    return (time.process_time() - started) / n * 1e6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000, help="calls per piece")
    parser.add_argument("--requests", type=int, default=25, help="GET /livez per block and variant")
    parser.add_argument("--rounds", type=int, default=400, help="pairs of blocks")
    parser.add_argument("--multiprocess", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()

    if args.multiprocess:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="cc-metrics-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorcommerce.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/unused.sqlite3")
    os.environ.setdefault("EMBEDDED_SCHEDULER", "0")
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)

    import django

    django.setup()
    import logging

    from django.conf import settings
    from django.test import override_settings

    import creatorcommerce.asgi  # noqa: F401  (start-up objects frozen out of the GC, as under a server)
    from apps.orders.api import buy_outcome
    from creatorcommerce.handlers import SyncChainASGIHandler
    from creatorcommerce.logs import JsonFormatter, RequestIdFilter, current_request_id
    from creatorcommerce.metrics import buy_answered
    from creatorcommerce.observe import ObservedHTTP, RequestObserverMiddleware, access_log, record

    results: dict = {"multiprocess": bool(args.multiprocess), "n": args.n, "load": os.getloadavg()}

    # -- pieces -----------------------------------------------------------------------------
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/orders/",
        "headers": [
            (b"host", b"shop.example"),
            (b"content-type", b"application/json"),
            (b"idempotency-key", b"k" * 16),
        ],
    }
    start = {"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]}
    body = {"type": "http.response.body", "body": b"{}"}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    async def answer(scope_, receive_, send_):
        scope_.get("creatorcommerce.observe", {})["route"] = "api/v1/orders/"
        await send_(start)
        await send_(body)

    observed = ObservedHTTP(answer)

    async def bare_call():
        await answer(scope, receive, send)

    async def observed_call():
        await observed(scope, receive, send)

    async def pieces_async():
        await per_call_async_us(observed_call, 1000)  # warm
        bare = await per_call_async_us(bare_call, args.n)
        wrapped = await per_call_async_us(observed_call, args.n)
        return wrapped - bare

    pieces = {"asgi_wrapper_with_histogram": asyncio.run(pieces_async())}

    class Request:
        method = "POST"
        resolver_match = type("Match", (), {"route": "api/v1/orders/"})()
        scope = {"creatorcommerce.observe": {"request_id": "x", "route": None}}

    middleware = RequestObserverMiddleware(lambda request: None)
    pieces["middleware_asgi_branch"] = per_call_us(lambda: middleware(Request()), args.n) - per_call_us(
        lambda: Request(), args.n
    )
    data = {"id": 1, "status": "paid"}
    pieces["buy_outcome_counted"] = per_call_us(lambda: buy_answered(buy_outcome(201, data, replayed=False)), args.n)
    pieces["request_id_read_per_event"] = per_call_us(current_request_id, args.n)
    with open(os.devnull, "w") as devnull:
        handler = logging.StreamHandler(devnull)
        handler.setFormatter(JsonFormatter())
        handler.addFilter(RequestIdFilter())
        access_log.addHandler(handler)
        access_log.propagate = False
        try:
            with override_settings(ACCESS_LOG=False):
                off = per_call_us(
                    lambda: record(route="api/v1/orders/", method="POST", status=201, seconds=0.01, request_id="x"),
                    args.n,
                )
            with override_settings(ACCESS_LOG=True):
                on = per_call_us(
                    lambda: record(route="api/v1/orders/", method="POST", status=201, seconds=0.01, request_id="x"),
                    args.n // 4,
                )
        finally:
            access_log.removeHandler(handler)
            access_log.propagate = True
    pieces["histogram_observe"] = off
    pieces["json_access_line"] = on - off
    results["pieces_us"] = pieces

    # -- GET /livez through the whole application ---------------------------------------------
    full = ObservedHTTP(SyncChainASGIHandler())
    with override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if not m.startswith("creatorcommerce.observe")]):
        plain = SyncChainASGIHandler()
    livez = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/livez",
        "raw_path": b"/livez",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def livez_cpu(app, n):
        async def once():
            sent = []

            async def collect(message):
                sent.append(message)

            await app(dict(livez), receive, collect)
            assert sent[0]["status"] == 200

        return await per_call_async_us(once, n)

    async def rounds():
        await livez_cpu(full, 200)
        await livez_cpu(plain, 200)
        # Short blocks, alternating which goes first: the process drifts (caches, the pool's
        # threads) more between long runs than the difference being measured.
        with_, without = [], []
        for n in range(args.rounds):
            first, second = (full, plain) if n % 2 else (plain, full)
            a = await livez_cpu(first, args.requests)
            b = await livez_cpu(second, args.requests)
            with_.append(a if first is full else b)
            without.append(b if first is full else a)
        return with_, without

    with_, without = asyncio.run(rounds())
    results["livez_cpu_us"] = {
        "observed_median": statistics.median(with_),
        "unobserved_median": statistics.median(without),
        "difference_median": statistics.median([a - b for a, b in zip(with_, without, strict=True)]),
        "rounds": args.rounds,
        "requests_per_round": args.requests,
    }
    results["load_after"] = os.getloadavg()

    mode = "multiprocess (mmap files)" if args.multiprocess else "one process (in memory)"
    print(f"\nObservation cost per call, CPU µs, {mode}; load {results['load'][0]:.2f}")
    for name, value in pieces.items():
        print(f"  {name:<32} {value:8.2f}")
    lv = results["livez_cpu_us"]
    print(
        f"  GET /livez, whole app: {lv['observed_median']:.1f} observed vs {lv['unobserved_median']:.1f} "
        f"unobserved (median of paired differences {lv['difference_median']:+.1f})"
    )
    out = (
        Path(args.out)
        if args.out
        else ROOT / "bench" / "results" / f"metrics_cost-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"  -> {out}")


if __name__ == "__main__":
    main()
