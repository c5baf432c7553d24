"""Debian's HAProxy running the shipped deploy/haproxy/haproxy.cfg as it is: only the
addresses and paths its environment variables name differ (a free port, the test's own
daphne processes, an admin socket and a log in the test's directory)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from pathlib import Path

from tests.helpers import wait_for
from tests.servers import ROOT, free_port

SHIPPED_CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"


class HAProxy:
    def __init__(self, directory: Path, servers: list[int]):
        self.port = free_port()
        self.socket_path = directory / "haproxy.sock"
        self.log = directory / "haproxy.log"
        self.servers = servers
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict:
        web1, web2 = self.servers
        return {
            **os.environ,
            "CC_HTTP_BIND": f"127.0.0.1:{self.port}",
            "CC_WEB1": f"127.0.0.1:{web1}",
            "CC_WEB2": f"127.0.0.1:{web2}",
            "CC_HAPROXY_SOCKET": str(self.socket_path),
            "CC_HAPROXY_LOG": "stdout",
        }

    def start(self) -> HAProxy:
        with open(self.log, "ab") as log:
            # -db: in the foreground, so that stopping it is stopping this process.
            self.proc = subprocess.Popen(
                ["haproxy", "-db", "-f", str(SHIPPED_CONFIG)],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_for(lambda: self._up() or self._exited(), 20, 0.05, message="haproxy to listen")
        return self

    def _exited(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"haproxy exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        return False

    def _up(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return self.socket_path.exists()
        except OSError:
            return False

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        """``show stat`` on the admin socket: (proxy, server) -> the CSV's fields."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket_path))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        names = lines[0].lstrip("# ").split(",")
        rows = {}
        for line in lines[1:]:
            if line:
                row = dict(zip(names, line.split(","), strict=False))
                rows[(row["pxname"], row["svname"])] = row
        return rows

    def status(self, server: str) -> str:
        return self.stats()[("web", server)]["status"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(OSError):
            self.socket_path.unlink()
