"""HAProxy's admin socket, for the deployment of deploy/haproxy/haproxy.cfg (README,
"Deploying on one machine"): what each server process is doing, and a rolling restart that
takes one process out at a time (``manage.py proxy_server``; deploy/haproxy/README.md,
"Rolling restart"). The benchmark (bench/stampede.py) and the scale-out test
(tests/deploy/) run the shipped config and drive it through this too.

Plain sockets, no Django: the ``web`` backend's servers are ``web1``, ``web2``, ...; the
``viewers`` backend's track them, so draining or readying a ``web`` server does the same to
its viewers' sockets.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "haproxy" / "haproxy.cfg"
DEFAULT_SOCKET = "/run/haproxy/admin.sock"


class ProxyError(RuntimeError):
    """HAProxy refused a command, or did not reach the state asked for in time."""


def shipped_env(*, bind: str, servers: list[str], socket_path: str | Path, log: str = "stdout") -> dict:
    """The environment under which ``haproxy -f deploy/haproxy/haproxy.cfg`` listens on
    ``bind``, sends to ``servers`` (two ``host:port``; one process is named twice) and opens
    its admin socket at ``socket_path``: the only things the shipped config lets vary."""
    web1, web2 = (servers * 2)[:2] if len(servers) == 1 else servers
    return {
        **os.environ,
        "CC_HTTP_BIND": bind,
        "CC_WEB1": web1,
        "CC_WEB2": web2,
        "CC_HAPROXY_SOCKET": str(socket_path),
        "CC_HAPROXY_LOG": log,
    }


class AdminSocket:
    def __init__(self, path: str | Path = DEFAULT_SOCKET, *, backend: str = "web"):
        self.path, self.backend = str(path), backend

    def _send(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(self.path)
            sock.sendall(line.encode() + b"\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return data.decode()

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        """``show stat``: (proxy, server) -> the CSV's fields."""
        lines = self._send("show stat").splitlines()
        names = lines[0].lstrip("# ").split(",")
        rows = {}
        for line in lines[1:]:
            if line:
                row = dict(zip(names, line.split(","), strict=False))
                rows[(row["pxname"], row["svname"])] = row
        return rows

    def servers(self) -> dict[str, dict[str, str]]:
        """The backend's server rows, by name."""
        return {sv: row for (px, sv), row in self.stats().items() if px == self.backend and sv not in ("BACKEND",)}

    def status(self, server: str) -> str:
        """``UP``, ``DOWN``, ``DRAIN``, ``MAINT``, ``UP 1/3`` (going down), ``no check``..."""
        return self._row(server)["status"]

    def in_flight(self, server: str) -> int:
        return int(self._row(server).get("scur") or 0)

    def _row(self, server: str) -> dict[str, str]:
        row = self.stats().get((self.backend, server))
        if row is None:
            raise ProxyError(f"HAProxy's backend {self.backend!r} has no server {server!r}")
        return row

    def command(self, line: str) -> None:
        answer = self._send(line).strip()
        if answer:
            raise ProxyError(f"HAProxy refused {line!r}: {answer}")

    def drain(self, server: str, *, wait: float = 0) -> int:
        """No new requests or sockets go to ``server``; waits up to ``wait`` s for its requests
        in flight to finish. Returns how many are still in flight."""
        self._row(server)
        self.command(f"set server {self.backend}/{server} state drain")
        deadline = time.monotonic() + wait
        while (left := self.in_flight(server)) and time.monotonic() < deadline:
            time.sleep(0.05)
        return left

    def ready(self, server: str, *, wait: float = 0) -> str:
        """Back in the pool; waits up to ``wait`` s for HAProxy to see it ``UP`` (a process
        that was down needs its health checks to pass first). Returns its status."""
        self._row(server)
        self.command(f"set server {self.backend}/{server} state ready")
        deadline = time.monotonic() + wait
        while not (status := self.status(server)).startswith("UP"):
            if time.monotonic() >= deadline:
                if wait:
                    raise ProxyError(f"{server} is {status}, not UP, after {wait:g} s")
                break
            time.sleep(0.1)
        return status
