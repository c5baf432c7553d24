"""Real daphne processes for tests that need a server of their own (the browser tests, the
two-node tests, the scale-out test): started on a free port with the environment given,
waited for, stopped (or killed) and their log shown when something went wrong."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPLICATION = "creatorcommerce.asgi:application"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until ``url`` answers at all (any status: /healthz may be 503 for a missing optional
    service); fails as soon as ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daphne exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"daphne did not answer on {url}")


class Daphne:
    """One daphne serving ``creatorcommerce.asgi:application`` on 127.0.0.1, its output in
    ``log``. ``start`` waits until ``ready_path`` answers; ``stop`` is SIGTERM (then SIGKILL
    after 10 s), ``kill`` is SIGKILL at once (a process dying)."""

    def __init__(
        self, env: dict, log: Path, *, port: int | None = None, ready_path: str = "/livez", args: tuple[str, ...] = ()
    ):
        self.env, self.log, self.ready_path, self.args = env, Path(log), ready_path, args
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60) -> Daphne:
        return self.launch().wait_ready(timeout)

    def launch(self) -> Daphne:
        """Start the process without waiting (``wait_ready`` waits): several start at once."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), *self.args, APPLICATION],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 60) -> Daphne:
        assert self.proc is not None
        try:
            wait_for_http(self.base + self.ready_path, self.proc, timeout)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; log tail:\n{self.tail()}") from None
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        """SIGTERM, SIGKILL if it is still there after 10 s; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def tail(self, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return "(no log)"

    def stopped_cleanly(self) -> bool:
        return self.proc is None or self.proc.returncode in (0, -signal.SIGTERM)


@contextlib.contextmanager
def daphne(env: dict, log: Path, **kwargs):
    """A started ``Daphne``, stopped on the way out; its log tail is printed if it did not
    stop cleanly or logged a traceback."""
    server = Daphne(env, log, **kwargs)
    try:
        yield server.start()
    finally:
        server.stop()
        tail = server.tail()
        if not server.stopped_cleanly() or "Traceback" in tail:
            print(f"daphne on port {server.port}, log tail:\n{tail}")
