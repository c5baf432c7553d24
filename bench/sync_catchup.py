"""The sync plane's catch-up bench (issue 20; docs/edge.md, "Figures"): an edge sells while
its link to the cloud is cut until its outbox holds 10,000 events, then the link returns
and the bench times the catch-up, checks that the cloud holds every event exactly once and
that its totals equal the edge's, and reads the cloud server's CPU from /proc. Not a test:
it never fails on a timing; it prints a table and writes
bench/results/sync-catchup-<timestamp>.json. Target: caught up in under 30 s.

    .venv/bin/python bench/sync_catchup.py                      # edge on SQLite (embedded)
    .venv/bin/python bench/sync_catchup.py --edge-db postgres   # edge on PostgreSQL
    .venv/bin/python bench/sync_catchup.py --events 2000        # a quicker run
    .venv/bin/python bench/sync_catchup.py --profile            # + py-spy over the cloud

``--profile`` writes collapsed stacks of the cloud server's threads holding the GIL (its
CPU) to ``bench/results/sync-catchup-<timestamp>/cloud-profile.txt`` (needs py-spy in the venv:
``pip install py-spy``; the run's other logs are there too).

The cloud: daphne (production settings, ``NODE_ROLE=cloud``) on a fresh PostgreSQL database
with a Redis index (the run creates, flushes and drops them). The edge: one process
(``NODE_ROLE=edge``, in-process tasks, as the embedded mode runs), on SQLite or a fresh
PostgreSQL database, with the same shop and SKU codes as the cloud; its node key is
registered with ``manage.py node_add``. Its ``CLOUD_URL`` is the fault proxy
(``creatorcommerce/faultproxy.py``) in this process, refusing connections while the edge
buys (``order_place``, one to three lines, a refund every 25th order) through its services
until the outbox holds ``--events``; the edge's relay meanwhile fails and backs off as it
would. Then the proxy passes and the clock starts; the edge's beat (every
``SYNC_INTERVAL_SECONDS``, 2 s) and kicks drive the relay as in production, so the figure
includes the wait for the relay's backoff (at most ``SYNC_BACKOFF_MAX_SECONDS``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import run as runner  # noqa: E402  (bench/run.py: databases, processes, cleanup)

from creatorcommerce.faultproxy import FaultProxy  # noqa: E402

SHOP = "sync-bench"
SKUS = [("TEE", "12.00"), ("CAP", "8.50"), ("MUG", "15.00"), ("PIN", "3.00"), ("ZINE", "6.00")]

# Runs on both nodes: the same shop, SKU codes and stock (names, not ids, cross nodes).
SEED = r"""
import json, sys
import django
django.setup()
from apps.accounts.models import User
from apps.accounts.services import user_grant_role
from apps.catalog.services import product_create

shop_slug, skus = sys.argv[1], json.loads(sys.argv[2])
User.objects.create(email="creator@sync-bench.test", display_name="Sync bench")
shop = user_grant_role(email="creator@sync-bench.test", role="creator", shop_name="Sync bench").shop
shop.slug = shop_slug
shop.save(update_fields=["slug"])
for code, price in skus:
    product_create(shop=shop, title=f"Bench {code}", skus=[{"code": code, "price": price, "stock": 1000000}])
print(json.dumps({"shop": shop.slug}))
"""

# The edge: buys with the link cut until the outbox holds the target, reports, waits for
# "go" on stdin (the link is back), then waits for the relay to catch up and reports again.
EDGE = r"""
import json, sys, threading, time
import django
django.setup()
from django.conf import settings
from apps.accounts.models import User
from apps.nodes.selectors import edge_totals, relay_state_of
from apps.nodes.tasks import relay_outbox
from apps.orders.models import Order
from apps.orders.services import address_set, order_place, order_refund, payment_method_add
from creatorcommerce.spine.models import OutboxEvent

shop_slug, skus, target, timeout = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
codes = [code for code, _ in skus]

def beat():  # the embedded scheduler's relay entry: wakes the relay thread
    while True:
        time.sleep(settings.SYNC_INTERVAL_SECONDS)
        try:
            relay_outbox.apply()
        except Exception as exc:
            print("beat:", exc, file=sys.stderr)

threading.Thread(target=beat, daemon=True).start()
buyers = []
for i in range(20):
    user = User.objects.create_user(email=f"buyer-{i}@sync-bench.test", password=None)
    payment_method_add(user=user, token="tok_ok")
    address_set(user=user, name=f"Buyer {i}", line1="1 Bench St", city="Berlin", postal_code="10115", country="DE")
    buyers.append(user)
creator = User.objects.get(email="creator@sync-bench.test")
start, n = time.monotonic(), 0
while OutboxEvent.objects.count() < target:
    lines = [(codes[(n + j) % len(codes)], 1 + (n + j) % 3) for j in range(1 + n % 3)]
    outcome = order_place(buyer=buyers[n % len(buyers)], lines=lines, shop_slug=shop_slug,
                          idempotency_key=f"sync-bench-{n:07d}", fingerprint="f")
    assert outcome.status == 201, outcome.body
    if n % 25 == 24:
        order_refund(order=Order.objects.get(pk=outcome.order.pk), actor=creator, restock=True, reason="bench")
    n += 1
buy_seconds = time.monotonic() - start
state = relay_state_of(settings.NODE_ID)
print("QUEUED " + json.dumps({
    "orders": n, "events": OutboxEvent.objects.count(), "buy_seconds": buy_seconds,
    "acked_seq": state.acked_seq if state else 0, "failures": state.failures if state else 0,
}), flush=True)
assert sys.stdin.readline().strip() == "go"
restored = time.monotonic()
total = OutboxEvent.objects.count()
first_ack = None
while True:
    state = relay_state_of(settings.NODE_ID)
    acked = state.acked_seq if state else 0
    if acked > 0 and first_ack is None:
        first_ack = time.monotonic() - restored
    if acked >= total:
        break
    if time.monotonic() - restored > timeout:
        break
    time.sleep(0.1)
done = time.monotonic() - restored
paid = Order.objects.filter(status="paid").count()
print("DONE " + json.dumps({
    "events": total, "acked_seq": acked, "first_ack_s": first_ack, "caught_up_s": done,
    "totals": edge_totals(), "paid_orders": paid, "orders": Order.objects.count(),
}), flush=True)
"""


def django_script(code: str, args: list[str], env: dict, timeout: float) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=runner.APP, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return done.stdout


def manage(env: dict, *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], env=env, cwd=runner.APP, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]}: {done.stderr[-3000:]}")
    return done.stdout


def read_line(proc: subprocess.Popen, prefix: str, deadline: float) -> dict:
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the edge exited ({proc.wait()}) before {prefix}")
        if line.startswith(prefix + " "):
            return json.loads(line[len(prefix) + 1 :])
    raise RuntimeError(f"no {prefix} from the edge in time")


def cloud_state(database: str, node_id: str) -> dict:
    with runner.pg_connect(database) as conn:
        acked, held, totals = conn.execute(
            "SELECT acked_seq, events_held, totals FROM nodes_node WHERE node_id=%s", [node_id]
        ).fetchone()
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT uuid) FROM nodes_nodeevent").fetchone()
        orders = conn.execute("SELECT count(*) FROM nodes_nodeorder").fetchone()[0]
        first, last = conn.execute("SELECT min(received_at), max(received_at) FROM nodes_nodeevent").fetchone()
        sums = {
            currency: {"orders": n, "units": int(units), "amount": amount}
            for currency, n, units, amount in conn.execute(
                "SELECT o.currency, count(DISTINCT o.id), sum(l.quantity), "
                "(SELECT sum(total) FROM orders_order x JOIN nodes_nodeorder y ON y.order_id=x.id "
                " WHERE x.currency=o.currency AND x.status='paid')::text "
                "FROM orders_order o JOIN nodes_nodeorder m ON m.order_id = o.id "
                "JOIN orders_orderline l ON l.order_id = o.id WHERE o.status='paid' GROUP BY o.currency"
            ).fetchall()
        }
        paid = conn.execute(
            "SELECT count(*) FROM orders_order o JOIN nodes_nodeorder m ON m.order_id=o.id WHERE o.status='paid'"
        ).fetchone()[0]
    return {
        "acked_seq": acked,
        "events_held": held,
        "event_rows": rows,
        "distinct_events": distinct,
        "mirrored_orders": orders,
        "paid_orders": paid,
        "reported_totals": totals,
        "cloud_totals": sums,
        "transfer_s": (last - first).total_seconds() if first and last else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="events queued on the edge (at least)")
    parser.add_argument("--edge-db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--redis-db", type=int, help="the cloud's Redis index (else the first empty of 15..8)")
    parser.add_argument("--batch-size", type=int, default=200, help="SYNC_BATCH_SIZE (the default: 200)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy samples the cloud server's threads holding the GIL (its CPU) during the catch-up",
    )
    args = parser.parse_args()
    spy_bin = Path(sys.executable).with_name("py-spy")
    if args.profile and not spy_bin.exists():
        parser.error(f"--profile needs py-spy ({spy_bin}): pip install py-spy")

    stamp = time.strftime("%Y%m%d-%H%M%S")
    logs = BENCH / "results" / f"sync-catchup-{stamp}"
    logs.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(3)
    cloud_db, edge_db = f"cc_demo_bench_cloud_{token}", f"cc_demo_bench_edge_{token}"
    node_id = f"bench-edge-{token}"
    redis_url = runner.pick_redis_db(args.redis_db)
    cloud_env = runner.bench_env(runner.production_like(), database=cloud_db, redis_url=redis_url)
    cloud_env.update(NODE_ROLE="cloud", NODE_ID="bench-cloud", CELERY_BROKER_URL=redis_url)
    sqlite_dir = Path(tempfile.mkdtemp(prefix="cc-sync-bench-"))
    edge_env = {k: v for k, v in cloud_env.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    edge_url = runner.pg_url(edge_db) if args.edge_db == "postgres" else f"sqlite:///{sqlite_dir / 'edge.sqlite3'}"
    edge_env.update(NODE_ROLE="edge", NODE_ID=node_id, SYNC_BATCH_SIZE=str(args.batch_size), DATABASE_URL=edge_url)
    skus = json.dumps(SKUS)
    runner.create_database(cloud_db)
    if args.edge_db == "postgres":
        runner.create_database(edge_db)
    proxy = None
    try:
        manage(cloud_env, "migrate", "-v", "0")
        django_script(SEED, [SHOP, skus], cloud_env, 120)
        cloud = runner.spawn(
            "cloud",
            [sys.executable, "-m", "daphne", "-v", "0", "-b", runner.HOST, "-p", str(port := runner.free_port()),
             "creatorcommerce.asgi:application"],
            cloud_env, logs / "cloud.log",
        )  # fmt: skip
        proxy = FaultProxy(port)
        proxy.mode = "refuse"  # the link is cut while the edge sells
        edge_env["CLOUD_URL"] = proxy.url
        manage(edge_env, "migrate", "-v", "0")
        django_script(SEED, [SHOP, skus], edge_env, 120)
        (logs / "edge.jwk").write_text(manage(edge_env, "node_key"))
        manage(cloud_env, "node_add", node_id, str(logs / "edge.jwk"))

        edge_log = (logs / "edge.log").open("w")
        edge = subprocess.Popen(
            [sys.executable, "-c", EDGE, SHOP, skus, str(args.events), "300"],
            env=edge_env, cwd=runner.APP, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=edge_log,
            text=True, start_new_session=True,
        )  # fmt: skip
        runner.STARTED.add(edge.pid, "edge")
        print(f"edge ({args.edge_db}) selling with the link cut until its outbox holds {args.events} events ...")
        queued = read_line(edge, "QUEUED", time.monotonic() + 1800)
        print(
            f"queued: {queued['events']} events from {queued['orders']} orders in {queued['buy_seconds']:.0f} s; "
            f"the relay failed {queued['failures']} time(s), acked {queued['acked_seq']}"
        )
        assert cloud.poll() is None, "the cloud exited"
        cpu_before, edge_cpu_before = runner.cpu_seconds(cloud.pid), runner.cpu_seconds(edge.pid)
        spy = None
        if args.profile:
            spy = runner.spawn(
                "py-spy",
                [str(spy_bin), "record", "--gil", "-p", str(cloud.pid), "-r", "200",
                 "--format", "raw", "-o", str(logs / "cloud-profile.txt")],
                cloud_env, logs / "py-spy.log",
            )  # fmt: skip
            time.sleep(1)  # py-spy attaches
        proxy.mode = "pass"
        edge.stdin.write("go\n")
        edge.stdin.flush()
        done = read_line(edge, "DONE", time.monotonic() + 600)
        cpu = runner.cpu_seconds(cloud.pid) - cpu_before
        edge_cpu = runner.cpu_seconds(edge.pid) - edge_cpu_before  # the relay (and the polling loop)
        if spy is not None:
            os.kill(spy.pid, signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait(timeout=30)
        edge.wait(timeout=30)
        got = cloud_state(cloud_db, node_id)
    finally:
        if proxy is not None:
            proxy.close()
        runner.STARTED.stop_all()
        runner.drop_database(cloud_db)
        if args.edge_db == "postgres":
            runner.drop_database(edge_db)
        for path in sqlite_dir.iterdir():
            path.unlink()
        sqlite_dir.rmdir()
        import redis

        redis.Redis.from_url(redis_url).flushdb()

    events = done["events"]

    def same(a: dict, b: dict) -> bool:  # amounts as numbers: SQLite sums print "4997", PostgreSQL "4997.00"
        norm = lambda t: {c: {**v, "amount": Decimal(v["amount"])} for c, v in (t or {}).items()}  # noqa: E731
        return norm(a) == norm(b)

    checks = {
        "every event acknowledged": done["acked_seq"] == events == got["acked_seq"],
        "each event held once": got["events_held"] == got["event_rows"] == got["distinct_events"] == events,
        "paid orders equal": got["paid_orders"] == done["paid_orders"],
        "cloud totals = edge totals": same(got["cloud_totals"], done["totals"]),
        "reported totals = edge totals": same(got["reported_totals"], done["totals"]),
    }
    transfer = got["transfer_s"]
    result = {
        "when": stamp,
        "edge_db": args.edge_db,
        "cloud_db": "postgres",
        "batch_size": args.batch_size,
        "queued": queued,
        "events": events,
        "orders": done["orders"],
        "caught_up_s": done["caught_up_s"],
        "first_ack_s": done["first_ack_s"],
        "transfer_s": transfer,
        "events_per_s_overall": events / done["caught_up_s"] if done["caught_up_s"] else None,
        "events_per_s_transfer": events / transfer if transfer else None,
        "cloud_cpu_s": cpu,
        "cloud_cpu_us_per_event": cpu * 1e6 / events if events else None,
        "edge_cpu_s": edge_cpu,
        "edge_cpu_us_per_event": edge_cpu * 1e6 / events if events else None,
        "load_average": os.getloadavg(),
        "checks": checks,
        "edge_totals": done["totals"],
        "cloud": got,
        "target_s": 30,
        "cpus": os.cpu_count(),
    }
    rows = [
        ["events queued (orders)", f"{events} ({done['orders']})"],
        ["link back → first batch acknowledged (relay backoff wait)", f"{done['first_ack_s']:.2f} s"],
        ["link back → all acknowledged (target < 30 s)", f"{done['caught_up_s']:.2f} s"],
        ["first → last batch received by the cloud", f"{transfer:.2f} s" if transfer else "-"],
        ["events/s, link back → all acknowledged", f"{result['events_per_s_overall']:.0f}"],
        ["events/s, first → last batch", f"{result['events_per_s_transfer']:.0f}" if transfer else "-"],
        ["cloud server CPU per event", f"{result['cloud_cpu_us_per_event']:.0f} µs ({cpu:.2f} s)"],
        ["edge process CPU per event (relay: read, sign, send)", f"{result['edge_cpu_us_per_event']:.0f} µs"],
        ["load average (1 min) at the end", f"{result['load_average'][0]:.1f} on {os.cpu_count()} cores"],
        *[[f"check: {name}", "yes" if ok else "NO"] for name, ok in checks.items()],
    ]
    print(f"\nsync catch-up: edge on {args.edge_db}, cloud on PostgreSQL, SYNC_BATCH_SIZE={args.batch_size}")
    print(runner.table(["", ""], rows))
    out = BENCH / "results" / f"sync-catchup-{stamp}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwritten: {runner.shown(out)}")


if __name__ == "__main__":
    main()
