"""A small asyncio HTTP/1.1 keep-alive client and the load loops built on it.

Why not a library: the open-loop generator needs to know, per request, when it was
*scheduled* (latency is measured from then, so a slow server cannot slow the generator down
and hide its own queueing: no coordinated omission), and it needs nothing but keep-alive,
Content-Length and chunked bodies. Raw asyncio streams do that in ~150 lines with less
overhead per request than a general-purpose client, which matters when the load generator
shares a 2-core machine with the server.

Every loop here is bounded in count and in time, and only ever connects to the host it is
given (run.py passes 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


class HttpError(Exception):
    """The connection broke or the response could not be parsed."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: dict[str, str] = field(default_factory=dict)


class Connection:
    """One keep-alive HTTP/1.1 connection (not shared between concurrent requests).

    A connection idle for longer than ``IDLE_REOPEN`` seconds is reopened before the next
    request: servers close idle keep-alive connections (uvicorn after 5 s), and a request
    written into a connection the server is just closing would fail for no fault of the
    server's.
    """

    IDLE_REOPEN = 3.0

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0

    async def open(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        self.last_used = time.monotonic()
        return self

    @property
    def is_open(self) -> bool:
        return self.writer is not None and not self.writer.is_closing()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> Response:
        if self.is_open and time.monotonic() - self.last_used > self.IDLE_REOPEN:
            self.close()
        if not self.is_open:
            await self.open()
        assert self.writer is not None and self.reader is not None
        try:
            self.writer.write(raw)
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers: dict[str, str] = {}
            cookies: dict[str, str] = {}
            for line in lines[1:]:
                if not line:
                    continue
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip()
                if name == "set-cookie":
                    cname, _, rest = value.partition("=")
                    cookies[cname.strip()] = rest.split(";", 1)[0]
                headers[name] = value
            if "content-length" in headers:
                body = await self.reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                body = await self._chunked()
            elif status in (204, 304) or 100 <= status < 200:
                body = b""
            else:  # body until close
                body = await self.reader.read()
                self.close()
            if headers.get("connection", "").lower() == "close":
                self.close()
            self.last_used = time.monotonic()
            return Response(status, headers, body, cookies)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as exc:
            self.close()
            raise HttpError(type(exc).__name__) from exc

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


def build_request(
    method: str, path: str, host: str, port: int, *, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin1") + body


def percentiles(samples: list[float], points=(50, 95, 99)) -> dict[str, float | None]:
    """Nearest-rank percentiles of ``samples`` (ms); ``inf`` entries (requests that never
    finished) count as slower than everything."""
    if not samples:
        return {f"p{p}": None for p in points}
    ordered = sorted(samples)
    out = {}
    for p in points:
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        out[f"p{p}"] = round(ordered[rank - 1], 3)
    return out


def distribution(samples: list[float]) -> list[float]:
    """p0..p100 in steps of 1 (101 values), for the JSON record."""
    if not samples:
        return []
    ordered = sorted(samples)
    n = len(ordered)
    return [round(ordered[min(n - 1, max(0, math.ceil(p / 100 * n) - 1))], 3) for p in range(101)]


async def open_loop(
    *,
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    rate: float,
    duration: float,
    timeout: float = 10.0,
    initial_connections: int = 32,
    max_connections: int = 256,
    on_response: Callable[[int, Response], None] | None = None,
) -> dict:
    """Offer ``rate`` requests/s for ``duration`` s, on schedule, whatever the server does.

    Request i is due at ``start + i / rate``; its latency runs from that moment to the end
    of its response, including any wait for a free connection. At most ``rate * duration``
    requests; everything still unanswered ``duration + timeout`` s after the start is
    cancelled and counted as ``timeout``.
    """
    loop = asyncio.get_running_loop()
    count = max(1, round(rate * duration))
    idle: list[Connection] = []
    for _ in range(min(initial_connections, max_connections)):
        try:
            idle.append(await Connection(host, port).open())
        except OSError:
            break
    opened = len(idle)
    every: list[Connection] = list(idle)
    waiters: list[asyncio.Future] = []
    latencies = [math.inf] * count
    status_of: list[str | None] = [None] * count
    statuses: Counter[str] = Counter()
    bodies_by_status: dict[str, bytes] = {}
    done_at: list[float] = []

    async def acquire() -> Connection:
        nonlocal opened
        if idle:
            return idle.pop()
        if opened < max_connections:
            opened += 1
            every.append(Connection(host, port))
            return every[-1]
        waiter = loop.create_future()
        waiters.append(waiter)
        return await waiter

    def release(conn: Connection) -> None:
        while waiters:
            waiter = waiters.pop(0)
            if not waiter.done():
                waiter.set_result(conn)
                return
        idle.append(conn)

    async def one(i: int, due: float) -> None:
        conn = await acquire()
        try:
            response = await conn.request(make_request(i))
        except HttpError as exc:
            statuses[f"error:{exc}"] += 1
            every.append(Connection(host, port))
            release(every[-1])
            return
        finished = loop.time()
        latencies[i] = (finished - due) * 1000
        done_at.append(finished)
        key = str(response.status)
        statuses[key] += 1
        status_of[i] = key
        if on_response is not None:
            on_response(i, response)
        bodies_by_status.setdefault(key, response.body[:300])
        release(conn)

    start = loop.time() + 0.05
    tasks = []
    for i in range(count):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(i, due)))
    deadline = start + duration + timeout
    pending = [t for t in tasks if not t.done()]
    if pending:
        _, still = await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
    answered = sum(v for k, v in statuses.items() if not k.startswith("error"))
    unfinished = count - answered - sum(v for k, v in statuses.items() if k.startswith("error"))
    if unfinished:
        statuses["timeout"] += unfinished
    for conn in every:
        conn.close()
    elapsed = max(duration, (max(done_at) - start) if done_at else duration)
    ok = sum(v for k, v in statuses.items() if k.isdigit() and 200 <= int(k) < 300)
    finite = [x for x in latencies if x != math.inf]
    return {
        "offered_rps": rate,
        "seconds": duration,
        "sent": count,
        "answered": answered,
        "ok": ok,
        "achieved_rps": round(answered / elapsed, 1),
        "ok_rps": round(ok / elapsed, 1),
        "elapsed_s": round(elapsed, 3),
        "latency_ms": percentiles(latencies),
        "mean_ms": round(sum(finite) / len(finite), 3) if finite else None,
        "max_ms": round(max(finite), 3) if finite else None,
        "distribution_ms": distribution(latencies),
        # Per answer (winners 201, losers 409, refused 503/429...): each class's own tail.
        "latency_by_status_ms": {
            key: {
                **percentiles([x for x, k in zip(latencies, status_of, strict=True) if k == key]),
                "max": round(max(x for x, k in zip(latencies, status_of, strict=True) if k == key), 3),
            }
            for key in sorted({k for k in status_of if k is not None})
        },
        "statuses": dict(sorted(statuses.items())),
        "sample_bodies": {
            k: v.decode("utf-8", "replace") for k, v in bodies_by_status.items() if not k.startswith("2")
        },
        "connections_used": opened,
    }


async def closed_loop(*, host: str, port: int, request: bytes, connections: int, duration: float) -> dict:
    """``connections`` clients, each sending the next request when the previous answer is in
    (what wrk does); for the framework ceiling when wrk is not installed."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    stop_at = loop.time() + duration

    async def client() -> None:
        conn = Connection(host, port)
        while loop.time() < stop_at:
            t0 = loop.time()
            try:
                response = await asyncio.wait_for(conn.request(request), timeout=10)
            except (HttpError, TimeoutError):
                statuses["error"] += 1
                conn.close()
                conn = Connection(host, port)
                continue
            latencies.append((loop.time() - t0) * 1000)
            statuses[str(response.status)] += 1
        conn.close()

    t0 = loop.time()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = loop.time() - t0
    return {
        "tool": "python closed loop",
        "connections": connections,
        "seconds": round(elapsed, 3),
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "latency_ms": percentiles(latencies),
        "statuses": dict(statuses),
        "errors": statuses.get("error", 0) + sum(v for k, v in statuses.items() if k.isdigit() and int(k) >= 400),
    }


async def wait_http(host: str, port: int, path: str, *, timeout: float = 30.0) -> None:
    """Until ``GET path`` answers 200 (a server coming up)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        conn = Connection(host, port)
        try:
            response = await asyncio.wait_for(
                conn.request(build_request("GET", path, host, port, headers={"Connection": "close"})), 5
            )
            if response.status == 200:
                return
            last = f"status {response.status}: {response.body[:200]!r}"
        except (HttpError, OSError, TimeoutError) as exc:
            last = repr(exc)
        finally:
            conn.close()
        await asyncio.sleep(0.2)
    raise RuntimeError(f"http://{host}:{port}{path} did not answer 200 within {timeout}s ({last})")
