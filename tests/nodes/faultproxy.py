"""A small TCP fault proxy between an edge and its cloud, for the sync tests (docs/edge.md,
"Tests"). Each connection is one HTTP exchange (the relay sends ``Connection: close``).

Modes, switchable at any time (new connections take the new mode):
- ``pass``: bytes flow both ways;
- ``refuse``: the connection is accepted and closed at once (the link is cut);
- ``blackhole``: the request is read and nothing is answered (a hung link: the client times out);
- ``drop_response``: the request reaches the cloud, the answer is thrown away and the
  connection closed (the cloud applied the batch; the edge never heard);
- ``hold_response``: the request reaches the cloud; the answer is held until the mode
  changes (then forwarded: the edge is still waiting, or gone).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class FaultProxy:
    def __init__(self, upstream_port: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self.mode = "pass"
        self.connections = 0
        self.forwarded = 0  # requests that reached the cloud
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = self._server.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="fault-proxy").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
            threading.Thread(target=self._serve, args=(client, self.mode), daemon=True).start()

    def _serve(self, client: socket.socket, mode: str) -> None:
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
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
