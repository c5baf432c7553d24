"""``manage.py proxy_server status|drain|ready [SERVER]``: one web process in or out of
HAProxy's pool, for a rolling restart (deploy/haproxy/README.md, "Rolling restart").

    manage.py proxy_server status                       # every process: status, requests in flight
    manage.py proxy_server drain web1 --wait 10         # no new requests or sockets; wait for its requests
    systemctl restart creatorcommerce-web@1             # (however the process is run)
    manage.py proxy_server ready web1 --wait 30         # back in the pool once HAProxy sees it UP

Exit status 1 (``CommandError``) if HAProxy refuses, the server is unknown, or it is not UP
within ``--wait`` after ``ready``; a drain that leaves requests in flight after ``--wait``
says how many, and exits 0 (stopping the process then cuts them off: the client's retry
goes to the other process).
"""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from creatorcommerce.haproxy import DEFAULT_SOCKET, AdminSocket, ProxyError


class Command(BaseCommand):
    help = "Show, drain or ready a web process in HAProxy's pool (deploy/haproxy/README.md)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("status", "drain", "ready"))
        parser.add_argument("server", nargs="?", help="web1, web2, ... (the config's server names)")
        parser.add_argument(
            "--socket",
            default=os.environ.get("CC_HAPROXY_SOCKET", DEFAULT_SOCKET),
            help=f"HAProxy's admin socket (default: CC_HAPROXY_SOCKET, else {DEFAULT_SOCKET})",
        )
        parser.add_argument("--wait", type=float, default=0.0, help="seconds to wait (drain: idle; ready: UP)")

    def handle(self, *args, action, server, socket, wait, **options):
        if wait < 0:
            raise CommandError("--wait must be 0 or more seconds")
        if action != "status" and not server:
            raise CommandError(f"{action} needs a server name (e.g. web1)")
        proxy = AdminSocket(socket)
        try:
            if action == "status":
                rows = proxy.servers()
                for name in sorted(rows):
                    if server and name != server:
                        continue
                    row = rows[name]
                    self.stdout.write(f"{name}\t{row['status']}\tin flight {row.get('scur') or 0}")
            elif action == "drain":
                left = proxy.drain(server, wait=wait)
                note = f"; {left} request(s) still in flight" if left else ""
                self.stdout.write(f"{server}: draining{note}")
            else:
                self.stdout.write(f"{server}: {proxy.ready(server, wait=wait)}")
        except ProxyError as exc:
            raise CommandError(str(exc)) from exc
        except OSError as exc:
            raise CommandError(f"cannot reach HAProxy's admin socket {socket}: {exc}") from exc
