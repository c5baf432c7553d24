"""``manage.py demo_edge``: the two-node demo (docs/edge.md, "A two-node demo").

``demo_edge`` (``make demo-edge``) runs a cloud and an edge on this machine: two daphne
servers on two ports over two databases (the edge on SQLite, the embedded mode; the cloud
on SQLite too, or on PostgreSQL when ``DATABASE_URL`` is set), both migrated and seeded
with the same demo shop (``seed_demo``), the edge's node key registered in the cloud
(``node_add``), and the edge's ``CLOUD_URL`` pointing at a link proxy in this process
(``creatorcommerce/faultproxy.py``). ``demo_edge cut`` (``make demo-edge-cut``) cuts the
venue's uplink: the proxy refuses the edge's batches and the edge's test payment gateway
becomes unreachable (``TEST_GATEWAY_DOWN_FILE``), so the edge sells offline within its floor
limit; ``demo_edge restore`` brings both back and the cloud catches up. Ctrl-C (or SIGTERM)
stops both servers. Both nodes run without a broker (in-process tasks, the embedded
scheduler: the edge's relay thread does the relaying).

The data stays in ``--data-dir`` (``.demo-edge/``) between runs; ``--fresh`` starts anew.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from creatorcommerce.demo import DEMO_PASSWORD, DEMO_SHOP, DEMO_USERS, DEMO_VENUE_NAME
from creatorcommerce.faultproxy import FaultProxy

# Environment the nodes must not inherit: each node gets its own database, role and URLs,
# and both run in the embedded mode (no broker, no MQTT).
NODE_ENV_DROPPED = {
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "MQTT_URL",
    "NODE_ROLE",
    "NODE_ID",
    "CLOUD_URL",
    "TEST_GATEWAY_DOWN_FILE",
    "EMBEDDED_SCHEDULER",
    "SITE_URL",
    "CSRF_TRUSTED_ORIGINS",
    "ALLOWED_HOSTS",
}
CLOUD_NODE_ID = "cloud-demo"
# The edge is served under another host name than the cloud: browsers share cookies across
# ports of one host, so two logins (cloud and edge) would overwrite each other's session.
CLOUD_HOST, EDGE_HOST = "127.0.0.1", "localhost"
LINK_CUT, GATEWAY_DOWN = "link-cut", "gateway-down"


def _default_dir() -> Path:
    return Path(os.environ.get("DEMO_EDGE_DIR") or settings.BASE_DIR / ".demo-edge")


class Command(BaseCommand):
    help = (
        "The two-node demo (docs/edge.md): serve a cloud and an edge on this machine ('serve', the default), "
        "or cut / restore the edge's uplink ('cut', 'restore'; 'status' says which)."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", nargs="?", default="serve", choices=["serve", "cut", "restore", "status"])
        parser.add_argument("--data-dir", type=Path, default=None, help="where both nodes keep their data (.demo-edge)")
        parser.add_argument("--cloud-port", type=int, default=8000)
        parser.add_argument("--edge-port", type=int, default=8001)
        parser.add_argument("--fresh", action="store_true", help="serve: forget both nodes' data and seed anew")
        parser.add_argument(
            "--cloud-only",
            action="store_true",
            help="cut: only the link to the cloud (the edge's payment gateway stays reachable)",
        )

    def handle(self, *args, action, data_dir, cloud_port, edge_port, fresh, cloud_only, **options):
        data = (data_dir or _default_dir()).resolve()
        if action == "serve":
            return self.serve(data, cloud_port=cloud_port, edge_port=edge_port, fresh=fresh)
        if not data.is_dir():
            raise CommandError(f"no demo in {data}: start one with `make demo-edge` (manage.py demo_edge)")
        if action == "cut":
            (data / LINK_CUT).touch()
            if not cloud_only:
                (data / GATEWAY_DOWN).touch()
        elif action == "restore":
            for name in (LINK_CUT, GATEWAY_DOWN):
                (data / name).unlink(missing_ok=True)
        self.stdout.write(f"uplink: {self.uplink_status(data)}")

    @staticmethod
    def uplink_status(data: Path) -> str:
        link = "cut" if (data / LINK_CUT).exists() else "up"
        gateway = "unreachable" if (data / GATEWAY_DOWN).exists() else "reachable"
        return f"link to the cloud {link}, payment gateway {gateway}"

    # -- serve ------------------------------------------------------------------------------

    def serve(self, data: Path, *, cloud_port: int, edge_port: int, fresh: bool) -> None:
        for port in (cloud_port, edge_port):
            if not _port_free(port):
                raise CommandError(f"port {port} is in use (another demo running?); choose others with --*-port")
        cloud_url = os.environ.get("DATABASE_URL", "")
        if fresh and data.exists():
            shutil.rmtree(data)
        data.mkdir(parents=True, exist_ok=True)
        for name in (LINK_CUT, GATEWAY_DOWN):
            (data / name).unlink(missing_ok=True)  # a demo starts with the uplink up
        node_id = self.edge_node_id(data, cloud_sqlite=not cloud_url)

        cloud_db = cloud_url or f"sqlite:///{data / 'cloud.sqlite3'}"
        proxy = FaultProxy(cloud_port, on_exchange=LinkReport(self.say), cut_file=data / LINK_CUT)
        base = {k: v for k, v in os.environ.items() if k not in NODE_ENV_DROPPED}
        base.update(DEBUG="1", PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="creatorcommerce.settings")
        cloud_base, edge_base = f"http://{CLOUD_HOST}:{cloud_port}", f"http://{EDGE_HOST}:{edge_port}"
        cloud_env = {
            **base,
            "DATABASE_URL": cloud_db,
            "NODE_ROLE": "cloud",
            "NODE_ID": CLOUD_NODE_ID,
            "SITE_URL": cloud_base,
            "CSRF_TRUSTED_ORIGINS": cloud_base,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
        }
        edge_env = {
            **base,
            "DATABASE_URL": f"sqlite:///{data / 'edge.sqlite3'}",
            "NODE_ROLE": "edge",
            "NODE_ID": node_id,
            "CLOUD_URL": proxy.url,
            "TEST_GATEWAY_DOWN_FILE": str(data / GATEWAY_DOWN),
            "SITE_URL": edge_base,
            "CSRF_TRUSTED_ORIGINS": edge_base,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Demo pacing: after a cut the relay retries at least every 5 s (not 30), and an
            # order accepted offline is captured within seconds of the gateway's return.
            "SYNC_BACKOFF_MAX_SECONDS": os.environ.get("SYNC_BACKOFF_MAX_SECONDS", "5"),
            "OFFLINE_CAPTURE_BACKOFF_SECONDS": os.environ.get("OFFLINE_CAPTURE_BACKOFF_SECONDS", "5"),
            "OFFLINE_CAPTURE_MAX_BACKOFF_SECONDS": os.environ.get("OFFLINE_CAPTURE_MAX_BACKOFF_SECONDS", "20"),
        }
        cloud_label = "PostgreSQL (DATABASE_URL)" if cloud_url else f"SQLite {data / 'cloud.sqlite3'}"
        self.stdout.write(f"Setting up the cloud ({cloud_label}) and the edge {node_id!r} (SQLite) ...")
        self.setup(data, cloud_env, edge_env, node_id)

        servers = []
        try:
            for name, env, port in (("cloud", cloud_env, cloud_port), ("edge", edge_env, edge_port)):
                servers.append(_serve(name, env, port, data / f"{name}.log"))
            for (name, proc), port in zip(servers, (cloud_port, edge_port), strict=True):
                _wait_live(f"http://127.0.0.1:{port}/livez", proc, data / f"{name}.log")
            self.banner(data, cloud_base, edge_base, node_id, cloud_label, proxy)
            self.watch(data, servers)
        finally:
            for _name, proc in servers:
                _stop(proc)
            proxy.close()
            self.stdout.write("Both nodes stopped.")

    def say(self, line: str) -> None:
        """A line of the demo's running commentary, with the time (the servers log apart)."""
        self.stdout.write(f"{time.strftime('%H:%M:%S')} {line}")

    def edge_node_id(self, data: Path, *, cloud_sqlite: bool) -> str:
        """The edge's NODE_ID, kept beside its database. A new edge database gets a new id
        (a reset edge is a new node to the cloud: docs/edge.md, "Known gaps"); with both on
        SQLite, a missing database on either side starts both anew."""
        id_file, edge_db, cloud_db = data / "node_id", data / "edge.sqlite3", data / "cloud.sqlite3"
        if id_file.exists() and edge_db.exists() and (cloud_db.exists() or not cloud_sqlite):
            return id_file.read_text().strip()
        for path in data.glob("*.sqlite3*"):
            if cloud_sqlite or path.name.startswith("edge."):
                path.unlink()
        node_id = f"venue-{secrets.token_hex(3)}"
        id_file.write_text(node_id + "\n")
        return node_id

    def setup(self, data: Path, cloud_env: dict, edge_env: dict, node_id: str) -> None:
        """Migrate both, seed both, register the edge's node key in the cloud. The two nodes'
        steps run side by side; node_add waits for both."""

        def cloud():
            _manage(cloud_env, "migrate", "--noinput", "-v", "0")
            _manage(cloud_env, "seed_demo")

        def edge():
            _manage(edge_env, "migrate", "--noinput", "-v", "0")
            (data / "edge.jwk").write_text(_manage(edge_env, "node_key"))
            _manage(edge_env, "seed_demo")

        errors: list[BaseException] = []

        def run(step):
            try:
                step()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(step,)) for step in (cloud, edge)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        # The edge sells the demo shop at its pop-up venue: its catalog pull takes the venue's
        # stock over from the cloud (docs/edge.md, "Catalog to the edge").
        out = _manage(
            cloud_env, "node_add", node_id, str(data / "edge.jwk"), "--shop", DEMO_SHOP, "--venue", DEMO_VENUE_NAME
        )
        self.stdout.write(out.strip())

    def banner(self, data, cloud_base, edge_base, node_id, cloud_label, proxy) -> None:
        users = ", ".join(email for email, _name in DEMO_USERS.values())
        w = self.stdout.write
        w(self.style.SUCCESS("Two-node demo is up."))
        w(f"  Cloud: {cloud_base}/   admin {cloud_base}/admin/   ({cloud_label})")
        w(f"  Edge:  {edge_base}/   admin {edge_base}/admin/   (node {node_id!r}, SQLite {data / 'edge.sqlite3'})")
        w(f"  The edge relays to the cloud through a link proxy on {proxy.url} (its CLOUD_URL).")
        w(f"Demo logins on both (password {DEMO_PASSWORD}): {users}")
        w("Try it:")
        w("  1. On the edge, log in as the viewer and buy on the live stream's page. Within a second the order is")
        w(f"     in the cloud: {cloud_base}/admin/orders/order/ (as staff), and {cloud_base}/admin/nodes/node/")
        w("     shows the edge's acknowledged sequence.")
        w("  2. Cut the venue's uplink: `make demo-edge-cut` (python manage.py demo_edge cut). The edge sells on:")
        w("     orders up to 50.00 are accepted offline with a signed receipt, larger ones are refused;")
        w("     the cloud hears nothing.")
        w("  3. Restore it: `make demo-edge-restore` (python manage.py demo_edge restore). The cloud catches up")
        w("     within seconds, each event once; the offline orders show in the cloud once the edge has captured")
        w("     them (its capture sweep runs every 15 s), paid on both.")
        w(f"Logs: {data / 'cloud.log'}, {data / 'edge.log'}. Ctrl-C stops both nodes.")

    def watch(self, data: Path, servers) -> None:
        def stop(signum, frame):
            raise KeyboardInterrupt

        # Ctrl-C as well as SIGTERM (kill, a service manager) stops both servers; SIGINT is
        # set explicitly because a shell's background job starts with it ignored.
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        status = self.uplink_status(data)
        try:
            while True:
                for name, proc in servers:
                    if proc.poll() is not None:
                        raise CommandError(f"the {name} server exited ({proc.returncode}); see {data / name}.log")
                now = self.uplink_status(data)
                if now != status:
                    status = now
                    self.say(f"[uplink] {status}")
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class LinkReport:
    """The link proxy's report of each exchange, one line per batch, and one per change
    between cut and up (not one per refused retry)."""

    def __init__(self, write):
        self.write = write
        self.cut = False
        self.refused = 0
        self._lock = threading.Lock()

    def __call__(self, mode: str, answer: bytes) -> None:
        with self._lock:
            if mode == "refuse":
                self.refused += 1
                if not self.cut:
                    self.cut = True
                    self.write("[link] cut: the edge's batches are refused; it keeps selling and queues its events")
                return
            if self.cut:
                self.write(f"[link] up again after {self.refused} refused attempt(s)")
                self.cut, self.refused = False, 0
            head, _, body = answer.partition(b"\r\n\r\n")
            if not answer:
                self.write("[link] the cloud did not answer (not up yet?); the edge retries")
                return
            status = head.split(b" ", 2)[1].decode() if head.count(b" ") >= 1 else "?"
            try:
                reply = json.loads(body)
            except ValueError:
                reply = {}
            if status == "200" and "acked_seq" in reply:
                self.write(
                    f"[link] batch delivered: the cloud recorded {reply.get('recorded')} new event(s), "
                    f"holds 1..{reply.get('acked_seq')}"
                )
            elif status == "200" and "products" in reply:
                self.write(f"[link] the edge pulled its catalog: {len(reply['products'])} product(s)")
            else:
                self.write(f"[link] edge -> cloud: HTTP {status} {reply.get('code', '')}".rstrip())


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise CommandError(f"manage.py {' '.join(args)} failed ({env['NODE_ROLE']}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _serve(name: str, env: dict, port: int, log_path: Path) -> tuple[str, subprocess.Popen]:
    log = open(log_path, "a")  # noqa: SIM115 - the child holds it; closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "creatorcommerce.asgi:application"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # stopped by us (SIGTERM), never left behind on Ctrl-C
    )
    log.close()
    return name, proc


def _wait_live(url: str, proc: subprocess.Popen, log_path: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text()[-2000:] if log_path.exists() else ""
            raise CommandError(f"the server on {url} exited ({proc.returncode}):\n{tail}")
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 - our own loopback URL
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise CommandError(f"no answer on {url} within {timeout:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
