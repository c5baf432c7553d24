"""The device-cue benchmark (issue 19): spine events at 50 cues a second across 20 devices,
published by a real Celery worker over the real Mosquitto, acked by the device simulator,
recorded by the cue listener. Not a test: it never fails on a timing; it prints a table and
writes bench/results/cues-<timestamp>.json. Targets (docs/devices.md, "Performance"):
event commit → publish p99 under 50 ms, publish → ack p99 under 100 ms.

    .venv/bin/python bench/cues.py                   # 30 s at 50 cues/s (about a minute)
    .venv/bin/python bench/cues.py --seconds 10 --rate 100

Processes, as a node runs them: one Celery worker (``-Q celery,cues``, prefork, 2 children),
``manage.py cue_listener``, ``manage.py device_simulator --room <id>`` (20 devices, ack at
once), and a driver that commits one ``stock.changed`` a 1/rate seconds (paced, open loop),
each matching exactly one device's rule (a rule per SKU, 20 SKUs). Figures come from the
cues' own timestamps: ``issued_at`` (the event's time), ``sent_at`` (just before the
publish), ``puback_at`` (the broker confirmed it), ``acked_at`` (the listener recorded the
device's ack). A fresh PostgreSQL database and a Redis index are created and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run as runner  # noqa: E402  (bench/run.py: databases, processes, cleanup)

# The worker's pool options and log level (``BENCH_WORKER_ARGS="-c 4"``, ``BENCH_WORKER_LOG=info``
# to see when each task was received and how long it ran).
WORKER_ARGS = os.environ.get("BENCH_WORKER_ARGS", "-c 2").split()
WORKER_LOG = os.environ.get("BENCH_WORKER_LOG", "warning")

SEED = r"""
import json, sys
import django
django.setup()
from apps.accounts.models import User
from apps.accounts.services import user_grant_role
from apps.catalog.services import product_create
from apps.devices.services import cue_rule_create, device_create, room_create

devices = int(sys.argv[1])
User.objects.create(email="cue-creator@bench.test", display_name="Bench")
shop = user_grant_role(email="cue-creator@bench.test", role="creator", shop_name="Bench Studio").shop
room = room_create(shop=shop, name="Bench studio")
skus = []
for i in range(devices):
    line = {"code": f"CUE-{i}", "price": "10.00", "currency": "USD", "stock": 100}
    product = product_create(shop=shop, title=f"Bench {i}", skus=[line])
    sku = product.skus.get()
    device, _ = device_create(room=room, name=f"LED {i}", kind="led_strip", mqtt_id=f"bench-led-{i}")
    cue_rule_create(shop=shop, event_type="stock.changed", device=device, kind="urgency", sku=sku, timeout_s=10)
    level = sku.stock_levels.get()
    skus.append({"sku": sku.code, "sku_id": sku.pk, "level": level.pk})
print(json.dumps({"shop": shop.pk, "room": room.pk, "skus": skus}))
"""

DRIVE = r"""
import json, sys, time
import django
django.setup()
from django.db import transaction
from creatorcommerce.spine.events import emit, _enqueuer

seed, rate, seconds = json.loads(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
skus = seed["skus"]
n = int(rate * seconds)
started_at = time.time()
start = time.monotonic()
late = 0
for i in range(n):
    due = start + i / rate
    wait = due - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    elif wait < -0.05:
        late += 1
    s = skus[i % len(skus)]
    with transaction.atomic():
        emit("stock.changed", {"sku": s["sku"], "sku_id": s["sku_id"], "shop": seed["shop"], "level": s["level"],
                               "available": 3, "version": i + 1}, groups=[])
_enqueuer().flush(timeout=10)
print(json.dumps({"events": n, "late": late, "elapsed": time.monotonic() - start, "started_at": started_at}))
"""

READY = r"""
import sys, time
import django
django.setup()
from apps.devices.models import Device
expected, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while Device.objects.filter(online=True).count() < expected:
    if time.monotonic() > deadline:
        raise SystemExit("the simulated devices did not come online")
    time.sleep(0.2)
print("{}")
"""

COLLECT = r"""
import json, sys, time
import django
django.setup()
from apps.devices.models import Cue
from datetime import datetime, timezone
expected, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
# Only the driven events' cues (the seed's own stock events made cues before the run).
driven = Cue.objects.filter(issued_at__gte=datetime.fromtimestamp(float(sys.argv[3]), timezone.utc))
while time.monotonic() < deadline:
    done = driven.filter(status__in=["acked", "failed"]).count()
    if done >= expected:
        break
    time.sleep(0.2)
rows = list(driven.order_by("issued_at").values_list("status", "issued_at", "sent_at", "puback_at", "acked_at"))
def ms(a, b):
    return (b - a).total_seconds() * 1000 if a and b else None
out = {"statuses": {}, "to_sent": [], "to_puback": [], "sent_to_ack": [], "event_to_ack": [], "series": []}
first = rows[0][1] if rows else None
for status, issued, sent, puback, acked in rows:
    out["statuses"][status] = out["statuses"].get(status, 0) + 1
    out["series"].append([round(ms(first, issued)), status, ms(issued, sent)])
    for key, value in (("to_sent", ms(issued, sent)), ("to_puback", ms(issued, puback)),
                       ("sent_to_ack", ms(sent, acked)), ("event_to_ack", ms(issued, acked))):
        if value is not None:
            out[key].append(value)
print(json.dumps(out))
"""


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (a prefork worker's pool), from /proc."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += runner.cpu_seconds(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                stack.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                continue
    return total


def tree_pids(pid: int) -> list[int]:
    """A process and its descendants (a prefork worker's pool)."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                stack.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                continue
    return found


def profile(pipeline: dict, logs: Path, seconds: float) -> list[subprocess.Popen]:
    """py-spy (next to the interpreter) on every process of the pipeline for the drive:
    collapsed stacks, one file per process, in the run's log folder."""
    spy = Path(sys.executable).with_name("py-spy")
    spies = []
    for name, proc in pipeline.items():
        for pid in tree_pids(proc.pid):
            out = logs / f"pyspy-{name}-{pid}.txt"
            cmd = [str(spy), "record", "-p", str(pid), "-d", str(int(seconds) + 2), "-r", "200", "-f", "raw"]
            spies.append(subprocess.Popen([*cmd, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1)  # attached before the first event
    return spies


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH, capture_output=True, text=True)
    return done.stdout.strip()


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def django_script(code: str, args: list[str], env: dict, timeout: float) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=runner.APP, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=50.0, help="cues a second")
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--redis-db", type=int)
    parser.add_argument("--mqtt-url", default=os.environ.get("MQTT_URL") or "mqtt://127.0.0.1:1883")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy record each pipeline process during the drive (raw stacks in the run's log folder)",
    )
    args = parser.parse_args()

    stamp = time.strftime("%Y%m%d-%H%M%S")
    logs = BENCH / "results" / f"cues-{stamp}"
    logs.mkdir(parents=True, exist_ok=True)
    database = f"cc_bench_cues_{secrets.token_hex(3)}"
    redis_url = runner.pick_redis_db(args.redis_db)
    env = runner.bench_env(runner.production_like(), database=database, redis_url=redis_url)
    env.update(
        {
            "CELERY_BROKER_URL": redis_url,
            "MQTT_URL": args.mqtt_url,
            "NODE_ID": f"bench-cues-{secrets.token_hex(3)}",
            "DEVICES_SIMULATE_IN_PROCESS": "0",
        }
    )
    runner.create_database(database)
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"], env=env, cwd=runner.APP, check=True, timeout=300
        )
        seed = django_script(SEED, [str(args.devices)], env, 120)
        py = sys.executable
        worker = runner.spawn(
            "celery",
            [
                py,
                "-m",
                "celery",
                "-A",
                "creatorcommerce",
                "worker",
                "-Q",
                "celery,cues",
                *WORKER_ARGS,
                "-l",
                WORKER_LOG,
            ],
            env,
            logs / "worker.log",
        )
        listener = runner.spawn("listener", [py, "manage.py", "cue_listener"], env, logs / "listener.log")
        simulator = runner.spawn(
            "simulator", [py, "manage.py", "device_simulator", "--room", str(seed["room"])], env, logs / "simulator.log"
        )
        # Ready: every simulated device online (the listener recorded its retained status)
        # and the worker says so in its log.
        django_script(READY, [str(args.devices), "60"], env, 90)
        deadline = time.monotonic() + 60
        while "ready" not in (logs / "worker.log").read_text() and time.monotonic() < deadline:
            if any(proc.poll() is not None for proc in (worker, listener, simulator)):
                raise RuntimeError(f"a process exited early; see {logs}")
            time.sleep(0.2)
        pipeline = {"worker": worker, "listener": listener, "simulator": simulator}
        cpu_before = {name: tree_cpu_seconds(proc.pid) for name, proc in pipeline.items()}
        consumer_before = runner.cpu_seconds(worker.pid)  # the worker's parent: it takes the messages
        spies = profile(pipeline, logs, args.seconds) if args.profile else []
        drove = django_script(DRIVE, [json.dumps(seed), str(args.rate), str(args.seconds)], env, args.seconds + 120)
        got = django_script(COLLECT, [str(drove["events"]), "30", str(drove["started_at"])], env, 120)
        cpu_by_process = {name: tree_cpu_seconds(proc.pid) - cpu_before[name] for name, proc in pipeline.items()}
        cpu_used = sum(cpu_by_process.values())
        cpu_by_process["worker (of which its parent)"] = runner.cpu_seconds(worker.pid) - consumer_before
        for spy in spies:
            spy.wait(timeout=60)
    finally:
        runner.STARTED.stop_all()
        runner.drop_database(database)
        import redis

        redis.Redis.from_url(redis_url).flushdb()

    rows = []
    result = {
        "when": stamp,
        "rate": args.rate,
        "seconds": args.seconds,
        "devices": args.devices,
        "driver": drove,
        "statuses": got["statuses"],
        # Worker (with its pool), listener and simulator, over the run and the wait for the
        # last cues; the driver and the collector are not counted.
        "pipeline_cpu_seconds": round(cpu_used, 2),
        "pipeline_cpu_ms_per_cue": round(cpu_used * 1000 / max(1, sum(got["statuses"].values())), 2),
        "cpu_ms_per_cue_by_process": {
            name: round(seconds * 1000 / max(1, sum(got["statuses"].values())), 2)
            for name, seconds in cpu_by_process.items()
        },
        "load_average": os.getloadavg(),
        "commit": commit(),
    }
    for key, label in (
        ("to_sent", "event commit → publish starts"),
        ("to_puback", "event commit → broker PUBACK"),
        ("sent_to_ack", "publish → device ack recorded"),
        ("event_to_ack", "event commit → ack recorded"),
    ):
        values = got[key]
        figures = {q: pct(values, q) for q in (50, 95, 99)}
        shown = {f"p{q}_ms": (round(v, 1) if v is not None else None) for q, v in figures.items()}
        result[key] = {"n": len(values), **shown}
        rows.append([label, len(values), *[runner.fmt_ms(figures[q]) for q in (50, 95, 99)]])
    print(f"\n{drove['events']} events at {args.rate:g}/s over {args.devices} devices; cues: {got['statuses']}")
    print(runner.table(["interval", "n", "p50", "p95", "p99"], rows))
    print(f"pipeline CPU (worker + listener + simulator): {result['pipeline_cpu_ms_per_cue']} ms per cue")
    print(f"  by process: {result['cpu_ms_per_cue_by_process']}; load average {result['load_average']}")
    (logs / "series.json").write_text(json.dumps(got["series"]))  # per cue: issued (ms), status, to sent
    out = BENCH / "results" / f"cues-{stamp}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwritten: {runner.shown(out)}")


if __name__ == "__main__":
    main()
