"""Debian's HAProxy running the shipped deploy/haproxy/haproxy.cfg as it is: only the
addresses and paths its environment variables name differ (a free port, the test's own
daphne processes, an admin socket and a log in the test's directory)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from pathlib import Path

from creatorcommerce.haproxy import SHIPPED_CONFIG, AdminSocket, shipped_env
from tests.helpers import wait_for
from tests.servers import free_port


class HAProxy:
    def __init__(self, directory: Path, servers: list[int]):
        self.port = free_port()
        self.socket_path = directory / "haproxy.sock"
        self.log = directory / "haproxy.log"
        self.servers = servers
        self.admin = AdminSocket(self.socket_path)
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict:
        return shipped_env(
            bind=f"127.0.0.1:{self.port}",
            servers=[f"127.0.0.1:{port}" for port in self.servers],
            socket_path=self.socket_path,
        )

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
        return self.admin.stats()

    def status(self, server: str) -> str:
        return self.admin.status(server)

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
