"""``manage.py demo``: migrate, seed, and serve the storefront and admin with daphne.

With a broker configured (``REDIS_URL``/``CELERY_BROKER_URL``) a Celery worker with an
embedded beat runs beside the server; without one, tasks run in-process.
"""

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Set up and serve the demo on http://127.0.0.1:8000 (daphne; Celery if a broker is set)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-serve", action="store_true", help="set up only, do not serve")

    def handle(self, *args, host, port, no_serve, **options):
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("seed_demo")
        if no_serve:
            return
        worker = None
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "creatorcommerce",
                    "worker",
                    "--beat",
                    "-l",
                    "info",
                    "--concurrency",
                    "2",
                ],
                env=os.environ.copy(),
            )
            self.stdout.write(f"Celery worker + beat started (pid {worker.pid}).")
        self.stdout.write(self.style.SUCCESS(f"Storefront: http://{host}:{port}/   Admin: http://{host}:{port}/admin/"))
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "creatorcommerce.asgi:application"],
            env=os.environ.copy(),
        )

        def stop(signum, frame):
            raise KeyboardInterrupt

        # A SIGTERM (kill, a service manager) stops the server and the worker too, as Ctrl-C
        # does: neither is left behind holding the port.
        previous = signal.signal(signal.SIGTERM, stop)
        try:
            server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            for child in (server, worker):
                if child is not None and child.poll() is None:
                    child.terminate()
                    try:
                        child.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        child.kill()
