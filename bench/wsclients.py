"""A process holding many WebSocket viewers, driven by run.py over stdin/stdout (JSON lines).

Each viewer is a bare asyncio.Protocol speaking just enough RFC 6455 for a viewer (a
handshake, unmasked server frames, fragmentation, ping -> pong, close): a few microseconds
per message, so that several thousand sockets on one core measure the server rather than
the client. The same clients are used against the app and against the baseline server.

Commands (one JSON object per line on stdin; one JSON answer per line on stdout):
  {"cmd": "tokens", "port", "stream", "n", "concurrency"}   fetch n viewer tokens
  {"cmd": "connect", "port", "path", "n", "concurrency", "tokens": bool, "sku", "hold": bool}
  {"cmd": "record"}                                          reset samples, start recording
  {"cmd": "peek"}                                            last values of open viewers
  {"cmd": "report"}                                          samples (ms), last values, counts
  {"cmd": "storm", "port", "stream", "first_ms", "max_ms", "poll_ms", "limit_s"}
      from now on a held viewer whose socket is lost comes back as the storefront's page does
      (static/js/live.js, stream.js): after a backoff with jitter (first_ms doubling up to
      max_ms, each wait drawn from [d/2, d]) it asks for a fresh viewer token with its session
      and reconnects; meanwhile it polls GET /api/v1/streams/{id}/ every poll_ms (0: never)
  {"cmd": "storm_report"}                                    who was lost, who is back, when
  {"cmd": "close_all"} / {"cmd": "exit"}
Latency of a message = receipt time (time.time()) - its "ts" (server commit or send time,
epoch seconds, same host clock).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import Connection, HttpError, build_request

# The stream page's longest wait between polls while they fail (static/js/stream.js).
POLL_MAX = 30.0


def _frame(opcode: int, payload: bytes = b"") -> bytes:
    """A masked client frame (clients must mask)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Viewer(asyncio.Protocol):
    def __init__(self, hub: Hub, request: bytes, sku: str, *, session: str | None = None, slot: int | None = None):
        self.hub, self.request, self.sku = hub, request, sku
        # The anonymous session it holds (its cookie), its viewer token, and its place in
        # ``hub.viewers``: a storm's reconnect replaces the viewer there.
        self.session, self.slot = session, slot
        self.token: str | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self.fragments: list[bytes] = []
        self.fragment_opcode = 1
        self.last = None
        self.messages = 0
        self.close_code: int | None = None
        self.open = False
        self.closing = False  # closed by us, not lost

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc):
        was_open, self.open = self.open, False
        if was_open:
            self.hub.closed[str(self.close_code or "lost")] += 1
            self.hub.closed_total[str(self.close_code or "lost")] += 1
            if self.slot is not None and not self.closing:
                self.hub.lost(self)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before the first message ({self.close_code})"))

    def data_received(self, data):
        now = time.time()
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status_line = bytes(self.buf[: self.buf.find(b"\r\n")])
            if b" 101 " not in status_line + b" ":
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError(status_line.decode("latin1")))
                self.transport.close()
                return
            del self.buf[: end + 4]
            self.upgraded = True
            self.open = True
        self._frames(now)

    # -- frames ------------------------------------------------------------------------
    def _frames(self, now: float) -> None:
        buf = self.buf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            length, pos = b1 & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, pos = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, pos = int.from_bytes(buf[2:10], "big"), 10
            mask = None
            if b1 & 0x80:
                mask, pos = bytes(buf[pos : pos + 4]), pos + 4
            if len(buf) < pos + length:
                return
            payload = bytes(buf[pos : pos + length])
            del buf[: pos + length]
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            fin, opcode = b0 & 0x80, b0 & 0x0F
            if opcode in (1, 2):
                if fin:
                    self._message(payload, now)
                else:
                    self.fragment_opcode, self.fragments = opcode, [payload]
            elif opcode == 0:
                self.fragments.append(payload)
                if fin:
                    self._message(b"".join(self.fragments), now)
                    self.fragments = []
            elif opcode == 8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                if self.transport is not None and not self.transport.is_closing():
                    self.transport.write(_frame(8, payload[:2]))
                    self.transport.close()
                return
            elif opcode == 9 and self.transport is not None:
                self.transport.write(_frame(10, payload))

    def _message(self, payload: bytes, now: float) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            self.hub.bad_messages += 1
            return
        kind = message.get("type")
        if kind == "stock":
            value = message.get("stock", {}).get(self.sku)
            if value is not None:
                self.last = value
            self.messages += 1
            if self.hub.recording and isinstance(message.get("ts"), (int, float)):
                self.hub.samples.append((now - message["ts"]) * 1000)
                self.hub.sizes.append(len(payload))
        elif kind == "snapshot":
            self.last = message.get("stock", {}).get(self.sku, self.last)
            if not self.ready.done():
                self.ready.set_result(True)
        else:
            self.hub.other[str(kind)] += 1

    def close(self) -> None:
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            if self.open:
                self.transport.write(_frame(8, (1000).to_bytes(2, "big")))
            self.open = False
            self.transport.close()


class Hub:
    def __init__(self, host: str):
        self.host = host
        self.tokens: list[tuple[str, str]] = []  # (token, sessionid cookie)
        self.viewers: list[Viewer] = []
        self.recording = False
        self.samples: list[float] = []
        self.sizes: list[int] = []
        self.closed: Counter[str] = Counter()  # since "record"
        self.closed_total: Counter[str] = Counter()  # since the first connect
        self.other: Counter[str] = Counter()
        self.bad_messages = 0
        self.port: int | None = None
        self.path: str | None = None
        # The reconnect storm ("storm"): its settings, and per slot when it was lost, when it
        # was back (its new snapshot), and its attempts.
        self.storm: dict | None = None
        self.lost_at: dict[int, float] = {}
        self.back_at: dict[int, float] = {}
        self.attempts: dict[int, int] = {}
        self.storm_failures: Counter[str] = Counter()
        self.polls: Counter[str] = Counter()
        self.tasks: set[asyncio.Task] = set()
        # Per slot: set by a poll the server answered, to try the socket within a second.
        self.wake: dict[int, asyncio.Event] = {}

    async def fetch_tokens(self, *, port: int, stream: int, n: int, concurrency: int) -> dict:
        """n viewer tokens, each for a new anonymous session (no cookie sent, no Origin)."""
        path = f"/api/v1/streams/{stream}/viewer-token"
        request = build_request("POST", path, self.host, port, headers={"Accept": "application/json"})
        errors: Counter[str] = Counter()
        refused: Counter[str] = Counter()
        remaining = [n]
        fetched = [0]
        t0 = time.monotonic()
        deadline = t0 + 120

        async def worker() -> None:
            conn = Connection(self.host, port)
            while remaining[0] > 0 and time.monotonic() < deadline:
                remaining[0] -= 1
                try:
                    response = await asyncio.wait_for(conn.request(request), 30)
                except (HttpError, TimeoutError) as exc:
                    errors[type(exc).__name__] += 1
                    conn.close()
                    conn = Connection(self.host, port)
                    continue
                if response.status in (429, 503):
                    # Refused for now (admission control): asked again after Retry-After, as
                    # the page's socket would be (bounded by the deadline).
                    refused[str(response.status)] += 1
                    remaining[0] += 1
                    retry_after = float(response.headers.get("retry-after", "1") or 1)
                    await asyncio.sleep(min(retry_after, 2.0) * (0.5 + random.random()))
                    continue
                if response.status != 200 or "sessionid" not in response.cookies:
                    errors[f"status {response.status}"] += 1
                    continue
                self.tokens.append((json.loads(response.body)["token"], response.cookies["sessionid"]))
                fetched[0] += 1
            conn.close()

        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, n)))))
        return {
            "tokens": fetched[0],
            "errors": dict(errors),
            "refused_then_asked_again": dict(refused),
            "seconds": round(time.monotonic() - t0, 3),
        }

    async def connect(
        self, *, port: int, path: str, n: int, concurrency: int, tokens: bool, sku: str, hold: bool = True
    ) -> dict:
        loop = asyncio.get_running_loop()
        failed: Counter[str] = Counter()
        semaphore = asyncio.Semaphore(max(1, concurrency))
        t0 = time.monotonic()
        made: list[Viewer] = []

        async def one() -> None:
            headers = {
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
                "Sec-WebSocket-Version": "13",
            }
            target = path
            session = None
            if tokens:
                if not self.tokens:
                    failed["no token"] += 1
                    return
                token, session = self.tokens.pop()
                target = f"{path}?token={token}"
                headers["Cookie"] = f"sessionid={session}"
            request = build_request("GET", target, self.host, port, headers=headers)
            async with semaphore:
                viewer = Viewer(self, request, sku, session=session)
                viewer.token = token if tokens else None
                try:
                    await asyncio.wait_for(loop.create_connection(lambda: viewer, self.host, port), 30)
                    await asyncio.wait_for(viewer.ready, 30)
                except (OSError, ConnectionError, TimeoutError) as exc:
                    failed[str(exc)[:80] or type(exc).__name__] += 1
                    viewer.close()
                    return
                made.append(viewer)

        await asyncio.gather(*(one() for _ in range(n)))
        self.port, self.path = port, path
        if hold:
            for viewer in made:
                viewer.slot = len(self.viewers)
                self.viewers.append(viewer)
        else:
            for viewer in made:
                viewer.close()
        return {
            "connected": len(made),
            "failed": dict(failed),
            "seconds": round(time.monotonic() - t0, 3),
            "open": self.open_count(),
        }

    # -- the reconnect storm ------------------------------------------------------------------

    def arm_storm(
        self,
        *,
        port: int,
        stream: int,
        first_ms: float,
        max_ms: float,
        poll_ms: float,
        limit_s: float,
        poll_first_ms: tuple[float, float] = (0, 0),
        reuse_token: bool = False,
        poll_backoff: bool = False,
        poll_wakes_socket: bool = False,
    ):
        self.storm = {
            "port": port,
            "stream": stream,
            "first": first_ms / 1000,
            "most": max_ms / 1000,
            "poll": poll_ms / 1000,
            "poll_first": (poll_first_ms[0] / 1000, poll_first_ms[1] / 1000),
            "reuse_token": reuse_token,
            "poll_backoff": poll_backoff,
            "poll_wakes_socket": poll_wakes_socket,
            "deadline": time.monotonic() + limit_s,
        }
        self.wake.clear()
        self.lost_at.clear()
        self.back_at.clear()
        self.attempts.clear()
        self.storm_failures.clear()
        self.polls.clear()
        return {"armed": self.open_count()}

    def lost(self, viewer: Viewer) -> None:
        """A held viewer's socket went: it comes back as the page does (if a storm is armed)."""
        if self.storm is None or (viewer.slot in self.lost_at and viewer.slot not in self.back_at):
            return
        slot = viewer.slot
        self.lost_at[slot] = time.time()
        self.back_at.pop(slot, None)
        for job in (self._come_back(viewer), self._poll(slot)):
            task = asyncio.ensure_future(job)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _come_back(self, old: Viewer) -> None:
        storm, slot, loop = self.storm, old.slot, asyncio.get_running_loop()
        attempt = 0
        while time.monotonic() < storm["deadline"] and self.storm is storm:
            ceiling = min(storm["most"], storm["first"] * 2**attempt)
            attempt += 1
            wait = ceiling / 2 + random.random() * ceiling / 2
            woken = self.wake[slot] = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), wait)
                # The page's LiveSocket.reconnectSoon: within a second, if sooner than planned.
                await asyncio.sleep(random.random())
            self.attempts[slot] = attempt
            cookie = {"Cookie": f"sessionid={old.session}"} if old.session else {}
            token = old.token if storm["reuse_token"] else None
            if token is None:
                request = build_request(
                    "POST",
                    f"/api/v1/streams/{storm['stream']}/viewer-token",
                    self.host,
                    storm["port"],
                    headers={"Accept": "application/json", "Connection": "close", **cookie},
                )
                conn = Connection(self.host, storm["port"])
                try:
                    response = await asyncio.wait_for(conn.request(request), 30)
                except (HttpError, OSError, TimeoutError) as exc:
                    self.storm_failures[f"token {type(exc).__name__}: {str(exc)[:60]}"] += 1
                    continue
                finally:
                    conn.close()
                if response.status != 200:
                    self.storm_failures[f"token {response.status}"] += 1
                    continue
                token = json.loads(response.body)["token"]
            headers = {
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
                "Sec-WebSocket-Version": "13",
                **cookie,
            }
            ws_request = build_request("GET", f"{self.path}?token={token}", self.host, storm["port"], headers=headers)
            viewer = Viewer(self, ws_request, old.sku, session=old.session, slot=slot)
            viewer.token = token
            try:
                await asyncio.wait_for(loop.create_connection(lambda v=viewer: v, self.host, storm["port"]), 30)
                await asyncio.wait_for(viewer.ready, 30)
            except (OSError, ConnectionError, TimeoutError) as exc:
                self.storm_failures[f"socket {str(exc)[:60] or type(exc).__name__}"] += 1
                viewer.close()
                if viewer.close_code == 4401:
                    old.token = None  # refused: the page asks for a new one
                continue
            self.viewers[slot] = viewer
            self.back_at[slot] = time.time()
            return

    async def _poll(self, slot: int) -> None:
        """What the page does while its socket is down: read the stream now, then every
        ``poll`` seconds, until the socket is back."""
        storm = self.storm
        if not storm["poll"]:
            return
        request = build_request(
            "GET",
            f"/api/v1/streams/{storm['stream']}/",
            self.host,
            storm["port"],
            headers={"Accept": "application/json", "Connection": "close"},
        )
        first, last = storm["poll_first"]
        await asyncio.sleep(first + random.random() * (last - first))
        wait = storm["poll"]
        while slot not in self.back_at and time.monotonic() < storm["deadline"] and self.storm is storm:
            conn = Connection(self.host, storm["port"])
            answered = False
            started = time.monotonic()
            try:
                response = await asyncio.wait_for(conn.request(request), 30)
                self.polls[str(response.status)] += 1
                answered = response.status == 200
            except (HttpError, OSError, TimeoutError) as exc:
                self.polls[type(exc).__name__] += 1
            finally:
                conn.close()
            if answered and storm["poll_wakes_socket"] and slot in self.wake:
                self.wake[slot].set()
            if storm["poll_backoff"]:
                took = time.monotonic() - started
                wait = min(POLL_MAX, max(storm["poll"], 10 * took) if answered else wait * 2)
            await asyncio.sleep(wait)

    def storm_report(self) -> dict:
        return {
            "viewers": len(self.viewers),
            "open": self.open_count(),
            "lost": len(self.lost_at),
            "back": len(self.back_at),
            "lost_at": [self.lost_at[s] for s in sorted(self.lost_at)],
            "back_at": [self.back_at.get(s) for s in sorted(self.lost_at)],
            "attempts": dict(Counter(self.attempts.values())),
            "failures": dict(self.storm_failures),
            "polls": dict(self.polls),
            "last": dict(Counter(str(v.last) for v in self.viewers if v.open)),
        }

    def disarm(self) -> None:
        self.storm = None
        for task in list(self.tasks):
            task.cancel()

    def open_count(self) -> int:
        return sum(1 for v in self.viewers if v.open)

    def record(self) -> dict:
        self.samples, self.sizes = [], []
        self.closed.clear()
        self.other.clear()
        for viewer in self.viewers:
            viewer.messages = 0
        self.recording = True
        return {"open": self.open_count()}

    def report(self) -> dict:
        self.recording = False
        last: Counter[str] = Counter(str(v.last) for v in self.viewers if v.open)
        per_viewer = Counter(v.messages for v in self.viewers)
        return {
            "open": self.open_count(),
            "viewers": len(self.viewers),
            "samples": [round(x, 3) for x in self.samples],
            "message_bytes": round(sum(self.sizes) / len(self.sizes), 1) if self.sizes else None,
            "last": dict(last),
            "messages_per_viewer": {str(k): v for k, v in sorted(per_viewer.items())},
            "closed": dict(self.closed),
            "closed_total": dict(self.closed_total),
            "other_messages": dict(self.other),
            "bad_messages": self.bad_messages,
        }

    def peek(self) -> dict:
        """The last values held by open viewers (cheap: no samples)."""
        return {"open": self.open_count(), "last": dict(Counter(str(v.last) for v in self.viewers if v.open))}

    def close_all(self) -> dict:
        self.disarm()
        for viewer in self.viewers:
            viewer.close()
        count = len(self.viewers)
        self.viewers = []
        return {"closed": count}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    hub = Hub(args.host)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def answer(body: dict) -> None:
        sys.stdout.write(json.dumps(body) + "\n")
        sys.stdout.flush()

    answer({"ready": True, "pid": os.getpid()})
    while True:
        line = await reader.readline()
        if not line:
            break
        command = json.loads(line)
        cmd = command.pop("cmd")
        try:
            if cmd == "tokens":
                answer(await hub.fetch_tokens(**command))
            elif cmd == "connect":
                answer(await hub.connect(**command))
            elif cmd == "record":
                answer(hub.record())
            elif cmd == "report":
                answer(hub.report())
            elif cmd == "peek":
                answer(hub.peek())
            elif cmd == "storm":
                answer(hub.arm_storm(**command))
            elif cmd == "storm_report":
                answer(hub.storm_report())
            elif cmd == "close_all":
                answer(hub.close_all())
                await asyncio.sleep(0.2)
            elif cmd == "exit":
                hub.close_all()
                answer({"bye": True})
                await asyncio.sleep(0.2)
                break
            else:
                answer({"error": f"unknown command {cmd}"})
        except Exception as exc:  # report, keep serving: run.py decides
            answer({"error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
