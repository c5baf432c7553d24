"""Two commits of the buy, measured in one sitting: the same scenarios against a "before"
and an "after" checkout, run alternately (before, after; then after, before; ...) so that
both see the same machine state, and one table of both. Not a test: it never fails on
timings.

    git worktree add --detach ../wt-before <commit>
    .venv/bin/python bench/compare.py --before ../wt-before [--after .] [--rounds 2]

Each round runs, for each checkout:

- bench/buy_inprocess.py (``--tree``): statements and PostgreSQL round trips per buy, CPU per
  buy through the service and through the HTTP stack (Django's test client), Python calls
  per buy (cProfile); in a fresh database ``cc_bench_ip_<pid>_<n>`` migrated with that
  checkout's own migrations, dropped afterwards;
- bench/run.py ``--only buy --servers daphne --tree`` at ``--rates`` (100 and 200 buys/s):
  p50/p99 and server CPU per buy on one daphne process, in the fresh database run.py makes
  (and drops) for itself, migrated and seeded with that checkout's code.

With ``--lines`` (3 by default; 0 for none) the "after" checkout also runs the 3-line buy
(three SKUs of one shop in one body's ``lines``), in process and under load (run.py's buy3
scenario, ``--rates3``); a checkout whose buy takes one SKU only skips it. Everything uses
the one Redis index ``--redis-db`` (8 by default; it must be empty at the start, and is
flushed after every step). ``--skip-load`` or ``--skip-inprocess`` runs one half only;
``--wait-quiet`` waits (bounded) for idle cores before each step. Prints a table and writes
bench/results/compare-<timestamp>.json (``--out``), with every run's own results next to it
in compare-<timestamp>-runs/ (the in-process runs' raw profiles too: bench/profile_diff.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from run import PG, REDIS_AT, drop_database, pg_connect, pg_url, table  # noqa: E402


def redis_client(index: int):
    import redis

    return redis.Redis(host=REDIS_AT[0], port=REDIS_AT[1], db=index)


def commit_of(tree: Path) -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def takes_lines(tree: Path) -> bool:
    """Whether that checkout's buy takes ``lines`` (the pricing layer's buy, issue 15)."""
    import ast

    module = ast.parse((tree / "apps" / "orders" / "services.py").read_text())
    for node in module.body:
        if isinstance(node, ast.FunctionDef) and node.name == "order_place":
            return any(a.arg == "lines" for a in [*node.args.args, *node.args.kwonlyargs])
    return False


def inprocess(
    tree: Path, *, n: int, lines: int, redis_db: int, out: Path, serial: int, cprofile: bool, keep_queries: bool
) -> dict:
    database = f"cc_bench_ip_{os.getpid()}_{serial}"
    with pg_connect("postgres") as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    redis_url = f"redis://{REDIS_AT[0]}:{REDIS_AT[1]}/{redis_db}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MQTT_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        {"DATABASE_URL": pg_url(database), "REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url, "LOG_LEVEL": "ERROR"}
    )
    cmd = [sys.executable, str(BENCH / "buy_inprocess.py"), "--tree", str(tree), "--n", str(n), "--out", str(out)]
    cmd += ["--lines", str(lines)] + (["--cprofile"] if cprofile else [])
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=1800)
    finally:
        drop_database(database)
        redis_client(redis_db).flushdb()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    print("    " + "\n    ".join(proc.stdout.strip().splitlines()), flush=True)
    result = json.loads(out.read_text())
    return slim(result, keep_queries=keep_queries)


def slim(result: dict, *, keep_queries: bool) -> dict:
    """An in-process result as this summary keeps it (the run's own file has everything):
    the statements' text once per checkout and buy, the profiles' top 15 functions."""
    if not keep_queries:
        result.pop("queries", None)
        result.pop("http_queries", None)
    for profile in result.get("cprofile", {}).values():
        for key in ("top_own_time", "top_cumulative_project"):
            profile[key] = profile.get(key, [])[:15]
    return result


def load(tree: Path, *, rates: str, rates3: str | None, redis_db: int, out: Path, quick: bool) -> dict:
    only = "buy,buy3" if rates3 else "buy"
    cmd = (
        [
            sys.executable,
            str(BENCH / "run.py"),
            "--only",
            only,
            "--servers",
            "daphne",
            "--tree",
            str(tree),
            "--rates",
            rates,
            "--redis-db",
            str(redis_db),
            "--out",
            str(out),
        ]
        + (["--rates3", rates3] if rates3 else [])
        + (["--quick"] if quick else [])
    )
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    redis_client(redis_db).flushdb()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("  daphne")]
    print("    " + "\n    ".join(lines), flush=True)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def quiet(threshold: float | None, limit: float) -> dict:
    """Wait (at most ``limit`` s) until every core was less than ``threshold`` % busy over
    3 s; return the last sample (what the machine was doing when the step started)."""
    from run import cores_busy, cores_snapshot

    deadline = time.monotonic() + limit
    while True:
        before = cores_snapshot()
        time.sleep(3)
        busy = cores_busy(before, cores_snapshot())
        if threshold is None or all((v or 0) < threshold for v in busy.values()) or time.monotonic() > deadline:
            return busy


def rate_figures(results: dict, scenario: str) -> dict:
    """Per offered rate: p50, p99, server CPU per buy, buys/s, and whether the stock checks held."""
    out = {}
    for r in results.get("scenarios", {}).get(scenario, {}).get("daphne", {}).get("rates", []):
        c = r["check"]
        out[str(int(r["offered_rps"]))] = {
            "p50_ms": r["latency_ms"]["p50"],
            "p95_ms": r["latency_ms"]["p95"],
            "p99_ms": r["latency_ms"]["p99"],
            "cpu_ms_per_buy": r["server_cpu_ms_per_request"],
            "ok_rps": r["ok_rps"],
            "statuses": r["statuses"],
            "steal_pct": r["steal_pct"],
            "cores_busy_pct": r["cores_busy_pct"],
            "checks_ok": c["sold_equals_paid"] and c["client_201_consistent"] and c["stock_never_below_zero"],
        }
    return out


def summary_rows(rounds: list[dict], rates: list[str]) -> list[list]:
    """One row per figure: each round's before and after, the medians, after ÷ before."""

    def fmt(v):
        if v is None:
            return "-"
        return f"{v:.3f}" if isinstance(v, float) and v < 10 else (f"{v:.1f}" if isinstance(v, float) else str(v))

    figures: list[tuple[str, callable]] = [
        ("statements per buy (PostgreSQL)", lambda r, t: r[t]["inprocess"]["queries_per_buy"]),
        ("round trips per buy", lambda r, t: r[t]["inprocess"]["round_trips_per_buy"]),
        ("statements per HTTP buy", lambda r, t: r[t]["inprocess"]["queries_per_http_buy"]),
        ("in-process service CPU ms/buy", lambda r, t: r[t]["inprocess"]["service"]["cpu_ms"]),
        ("in-process HTTP CPU ms/buy", lambda r, t: r[t]["inprocess"]["http"]["cpu_ms"]),
        (
            "Python calls per service buy",
            lambda r, t: r[t]["inprocess"].get("cprofile", {}).get("service", {}).get("calls_per_buy"),
        ),
        (
            "Python calls per HTTP buy",
            lambda r, t: r[t]["inprocess"].get("cprofile", {}).get("http", {}).get("calls_per_buy"),
        ),
    ]
    for rate in rates:
        figures += [
            (f"daphne {rate}/s: p50 ms", lambda r, t, k=rate: r[t]["load"].get(k, {}).get("p50_ms")),
            (f"daphne {rate}/s: p99 ms", lambda r, t, k=rate: r[t]["load"].get(k, {}).get("p99_ms")),
            (f"daphne {rate}/s: server CPU ms/buy", lambda r, t, k=rate: r[t]["load"].get(k, {}).get("cpu_ms_per_buy")),
            (f"daphne {rate}/s: buys/s", lambda r, t, k=rate: r[t]["load"].get(k, {}).get("ok_rps")),
        ]

    def safe(get, r, t):
        try:
            return get(r, t)
        except (KeyError, TypeError):
            return None

    rows = []
    for name, get in figures:
        before = [safe(get, r, "before") for r in rounds]
        after = [safe(get, r, "after") for r in rounds]
        if all(v is None for v in before + after):
            continue
        b = [v for v in before if isinstance(v, (int, float))]
        a = [v for v in after if isinstance(v, (int, float))]
        mb = statistics.median(b) if b else None
        ma = statistics.median(a) if a else None
        ratio = f"{ma / mb:.3f}" if mb and ma is not None else "-"
        rows.append(
            [name, " / ".join(fmt(v) for v in before), " / ".join(fmt(v) for v in after), fmt(mb), fmt(ma), ratio]
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True, help="the older checkout (e.g. a git worktree)")
    parser.add_argument("--after", default=str(ROOT), help="the newer checkout (default: this one)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--n", type=int, default=1000, help="in-process buys per path and run")
    parser.add_argument("--rates", default="100,200", help="buys/s offered to daphne, comma-separated")
    parser.add_argument("--rates3", default="100,200", help="3-line buys/s offered (after only)")
    parser.add_argument("--lines", type=int, default=3, help="SKUs of the multi-line buy (0: none)")
    parser.add_argument("--redis-db", type=int, default=8, choices=range(16), metavar="0-15")
    parser.add_argument("--skip-load", action="store_true", help="in-process figures only")
    parser.add_argument("--skip-inprocess", action="store_true", help="load figures only")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        help="before each step, wait until every core is less busy than this %% (over 3 s; others' work "
        "blurs latency most), at most --wait-max seconds",
    )
    parser.add_argument("--wait-max", type=float, default=900)
    parser.add_argument("--quick", action="store_true", help="run.py's quick profile (3 s per rate, not 10)")
    parser.add_argument("--out", help="JSON path (default bench/results/compare-<timestamp>.json)")
    args = parser.parse_args()
    trees = {"before": Path(args.before).resolve(), "after": Path(args.after).resolve()}
    for label, tree in trees.items():
        if not (tree / "manage.py").is_file():
            parser.error(f"--{label}: no manage.py in {tree}")
    if redis_client(args.redis_db).dbsize():
        parser.error(f"Redis index {args.redis_db} is not empty: someone else may be using it (--redis-db)")

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_path = Path(args.out).resolve() if args.out else BENCH / "results" / f"compare-{stamp}.json"
    runs_dir = out_path.with_name(out_path.stem + "-runs")
    runs_dir.mkdir(parents=True, exist_ok=True)
    rates = [str(int(float(x))) for x in args.rates.split(",")]
    commits = {label: commit_of(tree) for label, tree in trees.items()}
    lines_ok = {label: args.lines > 1 and takes_lines(tree) for label, tree in trees.items()}
    print(f"before {commits['before'][:7]} ({trees['before']}), after {commits['after'][:7]} ({trees['after']})")
    result: dict = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "trees": {k: str(v) for k, v in trees.items()},
        "commits": commits,
        "parameters": {k: v for k, v in vars(args).items() if k not in {"before", "after", "out"}},
        "postgres": {k: v for k, v in PG.items() if k != "password"},
        "rounds": [],
        "lines": {},
    }
    serial = 0
    t0 = time.monotonic()
    for k in range(args.rounds):
        order = ["before", "after"] if k % 2 == 0 else ["after", "before"]
        entry: dict = {"order": order}
        for label in order:
            tree = trees[label]
            figures: dict = {"load": {}, "commit": commits[label], "cores_busy_pct_before": {}}
            if not args.skip_inprocess:
                figures["cores_busy_pct_before"]["inprocess"] = quiet(args.wait_quiet, args.wait_max)
                print(f"[round {k + 1}, {label}] in process; load average {os.getloadavg()[0]:.2f}", flush=True)
                serial += 1
                figures["inprocess"] = inprocess(
                    tree,
                    n=args.n,
                    lines=1,
                    redis_db=args.redis_db,
                    out=runs_dir / f"inprocess-{label}-r{k + 1}.json",
                    serial=serial,
                    cprofile=True,
                    keep_queries=k == 0,
                )
            if not args.skip_load:
                figures["cores_busy_pct_before"]["load"] = quiet(args.wait_quiet, args.wait_max)
                print(f"[round {k + 1}, {label}] load; load average {os.getloadavg()[0]:.2f}", flush=True)
                rates3 = args.rates3 if lines_ok[label] else None
                res = load(
                    tree,
                    rates=args.rates,
                    rates3=rates3,
                    redis_db=args.redis_db,
                    out=runs_dir / f"load-{label}-r{k + 1}.json",
                    quick=args.quick,
                )
                result.setdefault("machine", res.get("machine"))
                figures["load"] = rate_figures(res, "buy")
                figures["load_problems"] = res.get("problems", [])
                if rates3:
                    figures["load3"] = rate_figures(res, "buy3")
            if lines_ok[label] and not args.skip_inprocess:
                serial += 1
                figures["inprocess3"] = inprocess(
                    tree,
                    n=args.n,
                    lines=args.lines,
                    redis_db=args.redis_db,
                    out=runs_dir / f"inprocess{args.lines}-{label}-r{k + 1}.json",
                    serial=serial,
                    cprofile=True,
                    keep_queries=k == 0,
                )
            entry[label] = figures
        result["rounds"].append(entry)

    result["duration_seconds"] = round(time.monotonic() - t0, 1)
    rows = summary_rows(result["rounds"], rates if not args.skip_load else [])
    result["summary"] = [
        dict(zip(["figure", "before", "after", "median before", "median after", "after/before"], r, strict=True))
        for r in rows
    ]
    print(
        f"\nSingle-SKU buy, before {commits['before'][:7]} vs after {commits['after'][:7]}, "
        f"{args.rounds} rounds (each cell: round 1 / round 2 / ...)\n"
        + table(["figure", "before", "after", "median before", "median after", "after/before"], rows)
    )
    multi = [(r["after"].get("inprocess3"), r["after"].get("load3")) for r in result["rounds"] if "after" in r]
    if any(ip or ld for ip, ld in multi):
        rows3 = []
        ips = [ip for ip, _ in multi if ip]
        if ips:
            rows3.append(["statements per buy (PostgreSQL)", " / ".join(str(ip["queries_per_buy"]) for ip in ips)])
            rows3.append(["round trips per buy", " / ".join(str(ip["round_trips_per_buy"]) for ip in ips)])
            rows3.append(["in-process service CPU ms/buy", " / ".join(str(ip["service"]["cpu_ms"]) for ip in ips)])
            rows3.append(["in-process HTTP CPU ms/buy", " / ".join(str(ip["http"]["cpu_ms"]) for ip in ips)])
            rows3.append(
                [
                    "Python calls per service / HTTP buy",
                    " / ".join(
                        f"{ip['cprofile']['service']['calls_per_buy']}, {ip['cprofile']['http']['calls_per_buy']}"
                        for ip in ips
                    ),
                ]
            )
        loads = [ld for _, ld in multi if ld]
        for rate in sorted({k for ld in loads for k in ld}, key=int):
            for key, name in (
                ("p50_ms", "p50 ms"),
                ("p99_ms", "p99 ms"),
                ("cpu_ms_per_buy", "server CPU ms/buy"),
                ("ok_rps", "buys/s"),
            ):
                rows3.append(
                    [f"daphne {rate}/s: {name}", " / ".join(str(ld.get(rate, {}).get(key, "-")) for ld in loads)]
                )
        result["lines"] = {"lines": args.lines, "rows": rows3}
        print(
            f"\n{args.lines}-line buy, after only (each cell: round 1 / round 2 / ...)\n"
            + table(["figure", "after"], rows3)
        )
    out_path.write_text(json.dumps(result, indent=1, default=str))
    print(f"\nwrote {out_path} (each run's own results in {runs_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
