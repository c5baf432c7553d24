"""CPU instructions per buy, before and after: the one CPU figure a shared VM cannot blur.
Time per buy moves with whatever else the machine runs; the instructions the buy executes
do not. Runs bench/buy_inprocess.py under valgrind (callgrind; about 40 times slower than
native) twice per checkout and path, with ``--n-small`` and ``--n-large`` buys: the
difference over the difference in buys is the buy's own cost, everything the process does
once (start-up, Django's setup, the seed) cancelled out. Never asserts.

    .venv/bin/python bench/buy_instructions.py --before ../wt-before [--after .] [--lines 3]
    .venv/bin/python bench/buy_instructions.py --before ../wt-before --server daphne

With ``--server daphne`` the process under valgrind is the server bench/run.py starts (same
settings; a database migrated and seeded by bench/seed.py natively first, with the seed's
per-buyer limit), sent ``--n-large`` buys one after the other over one keep-alive
connection after a warm-up; its running total (``callgrind_control -e``) is read before and
after them, less what the same time idle costs. The instructions per buy then include
daphne, the ASGI handler, authentication from the session, the throttle and the broker
publish after commit: bench/run.py's "server CPU per buy", without the noise.

Each checkout gets a database ``cc_bench_vg_<pid>_<label>`` (migrated natively once by its own
migrations, dropped at the end); every run uses Redis index ``--redis-db`` (flushed at the
end). ``PYTHONHASHSEED=0`` so that two runs of one checkout hash alike. Prints a table and
writes bench/results/instructions-<timestamp>.json (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from compare import commit_of, redis_client, takes_lines  # noqa: E402
from loadgen import Connection, build_request, wait_http  # noqa: E402
from run import (  # noqa: E402
    HOST,
    LINES_PER_BUY3,
    REDIS_AT,
    drop_database,
    free_port,
    pg_connect,
    pg_url,
    production_like,
    table,
)


def env_for(database: str, redis_db: int) -> dict:
    redis_url = f"redis://{REDIS_AT[0]}:{REDIS_AT[1]}/{redis_db}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MQTT_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        {
            "DATABASE_URL": pg_url(database),
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "LOG_LEVEL": "ERROR",
            "PYTHONHASHSEED": "0",
            "DJANGO_SETTINGS_MODULE": "creatorcommerce.settings",
        }
    )
    return env


def instructions(tree: Path, env: dict, *, path: str, n: int, lines: int, scratch: Path) -> int:
    """Instructions the whole process executed (callgrind's ``Collected``)."""
    tag = f"{tree.name}-{path}-{lines}-{n}"
    cmd = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={scratch / f'{tag}.callgrind'}",
        sys.executable,
        str(BENCH / "buy_inprocess.py"),
        "--tree",
        str(tree),
        "--n",
        str(n),
        "--lines",
        str(lines),
        "--paths",
        path,
        "--out",
        str(scratch / f"{tag}.json"),
    ]
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=3600)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-1500:]}\n{proc.stderr[-2500:]}")
    return int(found.group(1))


def seed_database(tree: Path, env: dict, *, lines: bool, scratch: Path) -> dict:
    """Migrate (natively) with the checkout's own migrations and seed the buyers and SKUs."""
    out = scratch / f"seed-{tree.name}.json"
    for cmd in (
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        [sys.executable, str(BENCH / "seed.py"), "--buyers", "10", "--buy-sku", "vg=1000000", "--fan-stock", "10"]
        + (["--buy3-sku", "vg=1000000"] if lines else [])
        + ["--out", str(out)],
    ):
        proc = subprocess.run(
            cmd, cwd=tree, env={**env, "BENCH_APP_TREE": str(tree)}, capture_output=True, text=True, timeout=900
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-2500:]}")
    return json.loads(out.read_text())


async def send_buys(port: int, seed: dict, *, count: int, lines: int, tag: str, first: int) -> dict:
    """``count`` buys one after the other over one connection; their statuses."""
    tokens = seed["buyer_tokens"]
    if lines == 1:
        body = json.dumps({"sku": seed["buy_skus"]["vg"]["code"], "quantity": 1}).encode()
    else:
        body = json.dumps({"lines": [{"sku": s["code"], "quantity": 1} for s in seed["buy3_skus"]["vg"]]}).encode()
    conn = Connection(HOST, port)
    statuses: dict[str, int] = {}
    try:
        for i in range(first, first + count):
            headers = {
                "X-Session-Token": tokens[i % len(tokens)],
                "Idempotency-Key": f"vg-{tag}-{i:07d}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            }
            request = build_request("POST", "/api/v1/orders/", HOST, port, headers=headers, body=body)
            response = await asyncio.wait_for(conn.request(request), 120)
            statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
    finally:
        conn.close()
    return statuses


def live_total(pid: int) -> int:
    """Instructions a process under callgrind has executed so far, all threads
    (``callgrind_control -e``)."""
    proc = subprocess.run(["callgrind_control", "-e", str(pid)], capture_output=True, text=True, timeout=300)
    counts = [int(m.replace(",", "")) for m in re.findall(r"^\s*Th\s+\d+\s+([\d,]+)", proc.stdout, re.M)]
    if not counts:
        raise RuntimeError(f"callgrind_control -e {pid}: {proc.stdout[-1000:]} {proc.stderr[-1000:]}")
    return sum(counts)


def server_instructions(tree: Path, env: dict, seed: dict, *, n: int, lines: int, scratch: Path) -> dict:
    """Instructions per buy in a daphne process (bench/run.py's command) under callgrind:
    its running total read before and after ``n`` sequential buys (after a warm-up of two
    buys per buyer), over ``n``. The total is read again after as many seconds idle as the
    buys took, to show what an idle server costs (timers): reported, and subtracted."""
    tag = f"{tree.name}-daphne-{lines}-{os.getpid()}-{time.monotonic_ns()}"
    port = free_port()
    log = scratch / f"{tag}.log"
    cmd = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={scratch / f'{tag}.callgrind'}",
        sys.executable,
        "-m",
        "daphne",
        "-v",
        "0",
        "-b",
        HOST,
        "-p",
        str(port),
        "creatorcommerce.asgi:application",
    ]
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            cmd,
            cwd=tree,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        asyncio.run(wait_http(HOST, port, "/livez", timeout=900))
        warm = 2 * len(seed["buyer_tokens"])
        asyncio.run(send_buys(port, seed, count=warm, lines=lines, tag=tag, first=-warm))
        time.sleep(2)  # what the warm-up left to do after its answers (the broker publish)
        t0, w0 = live_total(proc.pid), time.monotonic()
        statuses = asyncio.run(send_buys(port, seed, count=n, lines=lines, tag=tag, first=0))
        time.sleep(2)
        t1, w1 = live_total(proc.pid), time.monotonic()
        time.sleep(w1 - w0)
        t2 = live_total(proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return {
        "instructions": t1 - t0 - (t2 - t1),
        "raw": {"buys": t1 - t0, "idle_same_time": t2 - t1, "seconds": round(w1 - w0, 1)},
        "statuses": statuses,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", default=str(ROOT))
    parser.add_argument("--n-small", type=int, default=20)
    parser.add_argument("--n-large", type=int, default=420)
    parser.add_argument(
        "--lines", type=int, default=3, help="also the multi-line buy where a checkout takes it (0: no)"
    )
    parser.add_argument("--paths", default="service,http", help="in process: service, http (Django's test client)")
    parser.add_argument("--server", choices=["daphne"], help="count a server's instructions instead of in process")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement (the median is shown)")
    parser.add_argument("--jobs", type=int, default=2, help="valgrind runs side by side")
    parser.add_argument("--redis-db", type=int, default=8, choices=range(16), metavar="0-15")
    parser.add_argument("--out")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        parser.error("valgrind is not installed (apt-get install valgrind)")
    if args.server and args.lines not in (0, 1, LINES_PER_BUY3):
        parser.error(f"--server: the seed's multi-line buy has {LINES_PER_BUY3} lines")
    if args.n_large <= args.n_small:
        parser.error("--n-large must be above --n-small")
    trees = {"before": Path(args.before).resolve(), "after": Path(args.after).resolve()}
    paths = [args.server] if args.server else [p.strip() for p in args.paths.split(",") if p.strip()]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_path = Path(args.out).resolve() if args.out else BENCH / "results" / f"instructions-{stamp}.json"
    databases = {label: f"cc_bench_vg_{os.getpid()}_{label}" for label in trees}
    result: dict = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "trees": {k: str(v) for k, v in trees.items()},
        "commits": {k: commit_of(v) for k, v in trees.items()},
        "parameters": {k: v for k, v in vars(args).items() if k not in {"before", "after", "out"}},
        "python": sys.version.split()[0],
        "runs": [],
        "per_buy": {},
    }
    jobs = []
    for label, tree in trees.items():
        for lines in [1] + ([args.lines] if args.lines > 1 and takes_lines(tree) else []):
            for path in paths:
                for _ in range(args.repeat):
                    # A server's count is read before and after the buys: one run of --n-large.
                    for n in (args.n_large,) if args.server else (args.n_small, args.n_large):
                        jobs.append((label, lines, path, n))
    scratch_dir = tempfile.TemporaryDirectory(prefix="cc-bench-vg-")
    scratch_path = Path(scratch_dir.name)
    server_env = production_like()
    seeds = {}
    try:
        for label, tree in trees.items():
            with pg_connect("postgres") as conn:
                conn.execute(f'CREATE DATABASE "{databases[label]}"')
            if args.server:
                env = {**env_for(databases[label], args.redis_db), **server_env}
                seeds[label] = seed_database(
                    tree, env, lines=args.lines > 1 and takes_lines(tree), scratch=scratch_path
                )
                continue
            # Migrate natively once (under valgrind it would take many minutes).
            migrated = subprocess.run(
                [sys.executable, str(BENCH / "buy_inprocess.py"), "--tree", str(tree), "--n", "1", "--out", os.devnull],
                cwd=tree,
                env=env_for(databases[label], args.redis_db),
                capture_output=True,
                text=True,
                timeout=900,
            )
            if migrated.returncode != 0:
                raise RuntimeError(f"setting up {label} failed:\n{migrated.stderr[-2500:]}")

        def run(job):
            label, lines, path, n = job
            t0 = time.monotonic()
            extra = {}
            if args.server:
                env = {**env_for(databases[label], args.redis_db), **server_env}
                got = server_instructions(trees[label], env, seeds[label], n=n, lines=lines, scratch=scratch_path)
                count, extra = got["instructions"], {"statuses": got["statuses"], "raw": got["raw"]}
            else:
                env = env_for(databases[label], args.redis_db)
                count = instructions(trees[label], env, path=path, n=n, lines=lines, scratch=scratch_path)
            print(
                f"  {label} lines={lines} {path} n={n}: {count:,} instructions ({time.monotonic() - t0:.0f} s)"
                + (f" {extra['statuses']}" if extra else ""),
                flush=True,
            )
            return {"tree": label, "lines": lines, "path": path, "n": n, "instructions": count, **extra}

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            result["runs"] = list(pool.map(run, jobs))
    finally:
        scratch_dir.cleanup()
        for database in databases.values():
            drop_database(database)
        redis_client(args.redis_db).flushdb()

    runs: dict[tuple, list[int]] = {}
    for r in result["runs"]:
        runs.setdefault((r["tree"], r["lines"], r["path"], r["n"]), []).append(r["instructions"])
    rows = []
    for lines in sorted({r["lines"] for r in result["runs"]}):
        for path in paths:
            per = {}
            for label in trees:
                large = runs.get((label, lines, path, args.n_large), [])
                if args.server:
                    each = [v / args.n_large for v in large]
                else:  # the runs of each size in the order they were queued, paired
                    small = runs.get((label, lines, path, args.n_small), [])
                    each = [(b - a) / (args.n_large - args.n_small) for a, b in zip(small, large, strict=False)]
                if each:
                    per[label] = statistics.median(each)
                    result["per_buy"].setdefault(f"{lines} line(s), {path}", {})[label] = [round(v) for v in each]
            ratio = f"{per['after'] / per['before']:.3f}" if "before" in per and "after" in per else "-"
            rows.append(
                [
                    f"{lines} line{'s' if lines > 1 else ''}, {path}",
                    f"{per['before'] / 1e6:.3f} M" if "before" in per else "-",
                    f"{per['after'] / 1e6:.3f} M" if "after" in per else "-",
                    ratio,
                ]
            )
    print(
        f"\nInstructions per buy (callgrind; median of {args.repeat}; "
        + (
            f"{args.n_large} buys in a {args.server} process"
            if args.server
            else f"{args.n_large} - {args.n_small} buys"
        )
        + "), "
        f"before {result['commits']['before'][:7]}, after {result['commits']['after'][:7]}\n"
        + table(["buy, path", "before", "after", "after/before"], rows)
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
