"""A Mosquitto of a test's own on a free port, to stop, start and reload: either anonymous,
or running the shipped deploy/mosquitto/mosquitto.conf (passwords and the ACL), templated
with this test's port and directories."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.browser import free_port

from .conftest import wait_for

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"


def need_mosquitto() -> None:
    if shutil.which("mosquitto") is None:
        reason = "needs the mosquitto binary to start a broker of its own"
        if REQUIRE_SERVICES:
            pytest.fail(f"REQUIRE_SERVICES=1 but this test {reason}", pytrace=False)
        pytest.skip(reason)


def shipped_config(*, port: int, server_port: int, auth_dir: Path, data_dir: Path) -> str:
    """The shipped config with its devices' listener on ``127.0.0.1:port``, the server's on
    ``server_port`` and its files in these directories; everything else as shipped. Fails
    if a directive it templates is gone."""
    text = SHIPPED_CONFIG.read_text()
    replacements = {
        "listener 1883": f"listener {port} 127.0.0.1",
        "listener 1884": f"listener {server_port} 127.0.0.1",
        "password_file": f"password_file {auth_dir}/passwd",
        "acl_file": f"acl_file {auth_dir}/acl",
        "persistence_location": f"persistence_location {data_dir}/",
    }
    for directive, line in replacements.items():
        text, count = re.subn(rf"^{re.escape(directive)}( .*)?$", line, text, flags=re.MULTILINE)
        assert count == 1, f"the shipped mosquitto.conf has {count} {directive!r} lines"
    assert re.search(r"^allow_anonymous false$", text, flags=re.MULTILINE), "the shipped config lets anyone in"
    return text


class Broker:
    def __init__(self, tmp_path: Path, *, secured: bool = False):
        self.port = free_port()  # devices (and, unsecured, everyone)
        self.server_port = free_port()  # the server's account (secured: the shipped config)
        # Started as root, mosquitto drops to the user "mosquitto" and reads and writes as it:
        # its files go in directories of their own that it can reach (tmp_path is private).
        self.data = Path(tempfile.mkdtemp(prefix="cc-mosquitto-"))
        self.data.chmod(0o777)
        self.auth = self.data / "auth"
        self.auth.mkdir()
        self.auth.chmod(0o755)
        self.log = tmp_path / "mosquitto.log"
        self.config = tmp_path / "mosquitto.conf"
        self.secured = secured
        if secured:
            self.config.write_text(
                shipped_config(port=self.port, server_port=self.server_port, auth_dir=self.auth, data_dir=self.data)
            )
        else:
            # Persistence on, as in production: sessions (and retained statuses) survive a restart.
            self.config.write_text(
                f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                f"persistence true\npersistence_location {self.data}/\n"
            )
        self.proc = None

    # The group that may read the password and ACL files (mqtt_auth --group), when mosquitto
    # drops to its own user.
    group = "mosquitto" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    # The server's account; with the shipped config it logs in on the server's listener.
    server_username = "cc-server"

    def url_as(self, username: str, password: str) -> str:
        port = self.server_port if self.secured and username == self.server_username else self.port
        return f"mqtt://{username}:{password}@127.0.0.1:{port}"

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["mosquitto", "-c", str(self.config)], stdout=log, stderr=log)

        def accepting():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                assert self.proc.poll() is None, f"mosquitto exited: {self.log.read_text()}"
                return False

        wait_for(accepting, 10)

    def reload(self):
        """SIGHUP: mosquitto reads its password and ACL files again."""
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def remove(self):
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)
