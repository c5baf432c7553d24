"""A small TCP fault proxy between an edge and its cloud (docs/edge.md): the sync tests put
it on the link to cut it, hang it or lose answers ("Tests"), and the two-node demo puts it
there so a user can cut the link and restore it ("A two-node demo"). Each connection is one
HTTP exchange (the relay sends ``Connection: close``).

Modes, switchable at any time (new connections take the new mode):
- ``pass``: bytes flow both ways;
- ``refuse``: the connection is accepted and closed at once (the link is cut);
- ``blackhole``: the request is read and nothing is answered (a hung link: the client times out);
- ``drop_response``: the request reaches the cloud, the answer is thrown away and the
  connection closed (the cloud applied the batch; the edge never heard);
- ``hold_response``: the request reaches the cloud; the answer is held until the mode
  changes (then forwarded: the edge is still waiting, or gone).

``cut_file``: while that file exists, every new connection is refused whatever ``mode``
says (the demo's ``manage.py demo_edge cut`` creates it, ``restore`` removes it).
``on_exchange(mode, answer)`` is called after each connection with the mode it met and the
cloud's answer as forwarded (``b""`` if none reached the client).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable


class FaultProxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        upstream_host: str = "127.0.0.1",
        host: str = "127.0.0.1",
        port: int = 0,
        cut_file: str | os.PathLike | None = None,
        on_exchange: Callable[[str, bytes], None] | None = None,
    ):
        self.upstream = (upstream_host, upstream_port)
        self.mode = "pass"
        self.cut_file = cut_file
        self.on_exchange = on_exchange
        self.connections = 0
        self.forwarded = 0  # requests that reached the cloud
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind((host, port))
        self._server.listen(64)
        self.host = host
        self.port = self._server.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="fault-proxy").start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def current_mode(self) -> str:
        """The mode a new connection meets (``refuse`` while the cut file exists)."""
        if self.cut_file is not None and os.path.exists(self.cut_file):
            return "refuse"
        return self.mode

    def close(self) -> None:
        self._closed = True
        self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client, self.current_mode), daemon=True).start()

    def _serve(self, client: socket.socket, mode: str) -> None:
        answered = b""
        try:
            if mode == "refuse":
                return
            if mode == "blackhole":
                client.settimeout(60)
                while client.recv(65536):
                    pass
                return
            upstream = socket.create_connection(self.upstream, timeout=30)
            self.forwarded += 1
            with upstream:
                threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
                answer = b""
                while chunk := upstream.recv(65536):
                    answer += chunk
                if mode == "drop_response":
                    return
                while mode == "hold_response" and self.mode == "hold_response":
                    time.sleep(0.05)
                client.sendall(answer)
                answered = answer
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()
            if self.on_exchange is not None:
                with contextlib.suppress(Exception):  # a reporting hook never breaks the link
                    self.on_exchange(mode, answered)

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
