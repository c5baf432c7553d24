"""Overload on one process (issue 22, items 1 and 2): open-loop buys at several times what
one process answers, before (admission control off, sold-out memory off) and after (each
``--limits`` value of ADMISSION_MAX_IN_FLIGHT, memory on), in one sitting. Not a test: it
never fails on a timing.

    .venv/bin/python bench/overload.py [--server daphne] [--rates 470,940] [--seconds 10] \\
        [--limits 16,24,32] [--sellout-rate 600] [--sellout-seconds 5] [--stock 100] [--redis-db 7]

For each configuration, one server process (pinned to core 0, load on core 1, as bench/run.py)
on a fresh database, then:

- **sustained**: every rate of ``--rates`` for ``--seconds`` on a SKU with stock for all of
  them (it never sells out): answers are winners (201) and, after, refusals (503);
- **sell-out**: ``--sellout-rate`` taps a second for ``--sellout-seconds`` on a SKU of
  ``--stock`` units (no shop named, as run.py's buy): winners (201), losers (409 sold_out:
  from memory once the process knows), refused (503);
- **sold out**: as many taps again on that SKU, now at zero: what a sold-out answer costs
  the server with HTTP (from memory after, from the database before).

Per answer class: count, p50/p95/p99/max from each request's scheduled time (no coordinated
omission), server CPU per answer, the load average; after every step the stock is checked
(units sold = units in paid orders, never below zero). Prints a table and writes
bench/results/overload-<timestamp>.json. Uses bench/run.py's servers, seed and clean-up:
the database it creates is dropped and the Redis index flushed on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run as R  # noqa: E402
from loadgen import Connection, HttpError, build_request, open_loop  # noqa: E402

HOST = R.HOST
WARMUP = 40


def configs(limits: list[str], *, before: bool = True) -> list[tuple[str, dict]]:
    """``before`` (admission and memory off), then one configuration per ``--limits`` entry:
    ``N`` (ADMISSION_MAX_IN_FLIGHT) or ``N/T`` (and ASGI_SYNC_THREADS T)."""
    out = [("before", {"ADMISSION_MAX_IN_FLIGHT": "0", "SOLDOUT_MEMORY": "0"})] if before else []
    for entry in limits:
        bound, _, threads = entry.partition("/")
        n = int(bound)
        # The creators' reserve in proportion to the default's (2 of 8).
        settings = {"ADMISSION_MAX_IN_FLIGHT": str(n), "ADMISSION_CREATOR_RESERVE": str(max(1, n // 4))}
        if threads:
            settings["ASGI_SYNC_THREADS"] = threads
        out.append((f"after-{n}" + (f"-t{threads}" if threads else ""), {**settings, "SOLDOUT_MEMORY": "1"}))
    return out


def classes(result: dict) -> dict:
    by = result.get("latency_by_status_ms", {})
    return {status: {"n": result["statuses"].get(status, 0), **by[status]} for status in sorted(by)}


async def step(server, seed_sku: dict, tokens: list[str], tag: str, rate: float, seconds: float, timeout: float):
    body = json.dumps({"sku": seed_sku["code"], "quantity": 1}).encode()

    def make(i: int) -> bytes:
        headers = {
            "X-Session-Token": tokens[i % len(tokens)],
            "Idempotency-Key": f"overload-{tag}-{i:07d}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        return build_request("POST", "/api/v1/orders/", HOST, server.port, headers=headers, body=body)

    load = round(os.getloadavg()[0], 2)
    cpu0, wall0, steal0 = R.cpu_seconds(server.pid), time.monotonic(), R.steal_snapshot()
    result = await open_loop(
        host=HOST, port=server.port, make_request=make, rate=rate, duration=seconds, timeout=timeout
    )
    cpu = R.cpu_seconds(server.pid) - cpu0
    answered = sum(v for k, v in result["statuses"].items() if k.isdigit())
    result["server_cpu_pct"] = round(100 * cpu / (time.monotonic() - wall0), 1)
    result["server_cpu_ms_per_answer"] = R.per_request_ms(cpu, answered)
    result["steal_pct"] = R.steal_share(steal0, R.steal_snapshot())
    result["load_average_1m"] = load
    result["classes"] = classes(result)
    result.pop("distribution_ms", None)
    return result


def check(conn, sku: dict) -> dict:
    state = R.stock_state(conn, [sku["level_id"]])
    paid = state["by_status"].get("paid", {"units": 0, "orders": 0})
    held = state["by_status"].get("reserved", {"units": 0})["units"]
    sold = sku["initial"] - state["available"]
    return {
        "available": state["available"],
        "units_sold": sold,
        "paid_units": paid["units"],
        "sold_equals_paid": sold == paid["units"] + held,
        "never_below_zero": state["available"] >= 0,
    }


def line(name: str, kind: str, rate: float, r: dict) -> str:
    cells = []
    for status, c in r["classes"].items():
        cells.append(f"{status}: {c['n']} p50 {c['p50']:.0f} p95 {c['p95']:.0f} p99 {c['p99']:.0f} max {c['max']:.0f}")
    other = {k: v for k, v in r["statuses"].items() if not k.isdigit()}
    head = (
        f"  {name:10} {kind:9} {rate:5.0f}/s  answered {r['achieved_rps']:6.1f}/s  "
        f"cpu {r['server_cpu_ms_per_answer']} ms/answer ({r['server_cpu_pct']}%)  load {r['load_average_1m']}  | "
    )
    return head + " | ".join(cells) + (f" | {other}" if other else "")


async def run_all(args, stamp: str, results: dict, logs: Path) -> None:
    database, redis_url, base = R.STARTED.database, R.STARTED.redis_url, R.production_like()
    env0 = R.bench_env(base, database=database, redis_url=redis_url)
    rc, out = await R.run_cmd([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env=env0, timeout=300)
    if rc != 0:
        raise RuntimeError(f"migrate failed:\n{out[-2000:]}")
    plan = configs(args.limits, before=not args.skip_before)
    big = WARMUP + int(sum(args.rates) * args.seconds) + 10
    skus = [
        a for name, _ in plan for a in ("--buy-sku", f"{name}-load={big}", "--buy-sku", f"{name}-sellout={args.stock}")
    ]
    seed_file = logs / "seed.json"
    rc, out = await R.run_cmd(
        [
            sys.executable,
            str(BENCH / "seed.py"),
            "--buyers",
            str(args.buyers),
            "--fan-stock",
            "10",
            "--out",
            str(seed_file),
            *skus,
        ],
        env=env0,
        timeout=600,
    )
    if rc != 0:
        raise RuntimeError(f"seed failed:\n{out[-3000:]}")
    seed = json.loads(seed_file.read_text())
    tokens = seed["buyer_tokens"]
    results["configs"] = {}
    with R.pg_connect(database) as conn:
        for name, overrides in plan:
            env = R.bench_env({**base, **overrides}, database=database, redis_url=redis_url)
            out_config: dict = {"settings": overrides, "steps": []}
            results["configs"][name] = out_config
            async with R.Server(args.server, env, logs, label=f"{args.server}-{name}") as server:
                conn_ = Connection(HOST, server.port)
                for _ in range(200):
                    with contextlib.suppress(HttpError):
                        await conn_.request(build_request("GET", "/livez", HOST, server.port))
                conn_.close()
                load_sku, sellout_sku = seed["buy_skus"][f"{name}-load"], seed["buy_skus"][f"{name}-sellout"]
                await step(server, load_sku, tokens, f"{stamp}-{name}-warm", 20, WARMUP / 20, args.timeout)
                for rate in args.rates:
                    r = await step(server, load_sku, tokens, f"{stamp}-{name}-{rate}", rate, args.seconds, args.timeout)
                    await R.settled_state(conn, [load_sku["level_id"]])
                    r["check"] = check(conn, load_sku)
                    r["kind"], r["rate"] = "sustained", rate
                    out_config["steps"].append(r)
                    print(line(name, "sustained", rate, r), flush=True)
                r = await step(
                    server,
                    sellout_sku,
                    tokens,
                    f"{stamp}-{name}-sellout",
                    args.sellout_rate,
                    args.sellout_seconds,
                    args.timeout,
                )
                await R.settled_state(conn, [sellout_sku["level_id"]])
                r["check"] = check(conn, sellout_sku)
                r["kind"], r["rate"] = "sellout", args.sellout_rate
                out_config["steps"].append(r)
                print(line(name, "sell-out", args.sellout_rate, r), flush=True)
                # Taps on the sold-out SKU alone: what a sold-out answer costs the server, HTTP
                # included (from memory after; from the database before).
                r = await step(
                    server,
                    sellout_sku,
                    tokens,
                    f"{stamp}-{name}-gone",
                    args.sellout_rate,
                    args.sellout_seconds,
                    args.timeout,
                )
                r["check"] = check(conn, sellout_sku)
                r["kind"], r["rate"] = "soldout", args.sellout_rate
                out_config["steps"].append(r)
                print(line(name, "sold out", args.sellout_rate, r), flush=True)
                print(f"  {name:10} checks: {[s['check'] for s in out_config['steps']]}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
    parser.add_argument("--rates", default="470,940", help="sustained buys/s offered (about 2x and 4x one process)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--limits", default="6", help="after 'before': ADMISSION_MAX_IN_FLIGHT values, each N or N/ASGI_SYNC_THREADS"
    )
    parser.add_argument("--skip-before", action="store_true", help="only the --limits configurations")
    parser.add_argument("--sellout-rate", type=float, default=600.0)
    parser.add_argument("--sellout-seconds", type=float, default=5.0)
    parser.add_argument("--stock", type=int, default=100)
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=10.0, help="a request unanswered this long after the step")
    parser.add_argument("--redis-db", type=int, choices=range(16), metavar="0-15", default=None)
    parser.add_argument("--out")
    args = parser.parse_args()
    args.rates = [float(x) for x in args.rates.split(",") if x.strip()]
    args.limits = [x.strip() for x in args.limits.split(",") if x.strip()]
    if R.have_taskset():
        os.sched_setaffinity(0, {1})
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_path = Path(args.out).resolve() if args.out else BENCH / "results" / f"overload-{stamp}.json"
    logs = out_path.with_name(out_path.stem + "-logs")
    logs.mkdir(parents=True, exist_ok=True)
    results: dict = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "args": vars(args)}
    status = 0
    try:
        R.STARTED.redis_url = R.pick_redis_db(args.redis_db)
        database = f"cc_overload_{stamp.replace('-', '_')}_{os.getpid()}"
        R.create_database(database)
        results["machine"] = R.machine(R.STARTED.redis_url, database)
        asyncio.run(run_all(args, stamp, results, logs))
    except KeyboardInterrupt:
        results["error"], status = "interrupted", 130
    except Exception as exc:
        print(f"\nbenchmark error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        results["error"], status = f"{type(exc).__name__}: {exc}", 1
    finally:
        R.STARTED.stop_all()
        if R.STARTED.database:
            with contextlib.suppress(Exception):
                R.drop_database(R.STARTED.database)
        if R.STARTED.redis_url:
            with contextlib.suppress(Exception):
                import redis

                redis.Redis.from_url(R.STARTED.redis_url).flushdb()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {R.shown(out_path)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
