"""Viewer fan-out: one subscriber per stream and process, one encoded frame for all sockets.

Channels' usual pattern, every socket joining the stream's groups itself, costs per message
and per socket a channel-layer queue put, a consumer task wake-up, dispatch, the socket's own
version checks and coalescing, a ``json.dumps`` and a send: about 20,000 of each a second at
2,000 viewers and 10 pushes a second, which is what made the fan-out 32x slower than a plain
``websockets.broadcast`` server (docs/performance.md).

So viewer sockets (``ViewerConsumer``) have no channel of their own. A ``StreamBroadcaster``,
one per (process, event loop, stream), created when the first local viewer of the stream
connects and torn down when the last one leaves, takes a channel from the channel layer,
joins ``stream_groups(stream_id)`` and the ``sku.<id>`` groups of the pinned SKUs, and runs
one receive loop. Its ``StreamFeed`` (apps/streams/feed.py; the control room's sockets use
the same class) filters, versions and coalesces exactly as a socket did; each outgoing
message is encoded once and that text written to every local socket with the consumer's
``base_send`` (the ASGI server's ``send``, through the session middleware), in one plain
loop; under daphne, framed once by autobahn and written to each socket as is
(``daphne_socket``). A socket whose send raises is dropped; the others still get the frame.

The receive loop survives errors (logged, retried after 0.1 s doubling up to 1 s; sockets
stay open): a viewer is therefore also immune to the core Redis layer's idle ``receive``
raising ``TimeoutError``, which closed Channels consumers with 1011.

A new socket: ``attach`` (the groups are joined before it returns), ``snapshot()`` (the
snapshot from the database, read after a ``mark()``), then ``welcome``: under the feed's
lock, the snapshot is merged with anything newer that arrived since that mark, sent with the
current ``seq``, and the socket joins the set, all before another message can be published.
So a socket never sees ``seq`` go backwards nor a value older than its snapshot. Works the
same on every channel layer (in-memory, channels-redis pub/sub and core), and each process
has its own broadcasters.

Sockets that connect while a snapshot read is under way share that read instead of each
starting its own: after a restart, a thousand viewers reconnecting within a few seconds
made a thousand identical reads (six statements each, on the one thread Channels gives
database work), which queued past daphne's 5 s handshake timeout (bench/stampede.py's
reconnect storm; docs/performance.md). Sharing changes nothing a socket sees: the read began
after its mark, and ``welcome`` merges what arrived since, exactly as for a read of its own
that started a moment earlier. A read is never reused once it has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable

from channels.layers import get_channel_layer

from creatorcommerce.metrics import FANOUT_LAG_SECONDS

from .feed import StreamFeed
from .services import stream_groups

log = logging.getLogger(__name__)

RETRY_FIRST = 0.1
RETRY_MOST = 1.0


def encode(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"))


def daphne_socket(send):
    """The daphne WebSocket protocol behind an ASGI ``send``, or None for any other server.

    Under daphne, ``send`` is ``partial(Server.handle_reply, protocol)`` and each text frame
    it is given is UTF-8 encoded, framed by autobahn and written by Twisted again for every
    socket (bench/run.py: 39 us of server CPU per frame at 2,000 viewers; the websockets
    baseline 7). The broadcaster frames a message once (autobahn's ``PreparedMessage``,
    made for broadcasting) and writes it with ``write_now`` to the sockets this finds, and
    uses ``send`` for the others (uvicorn, tests' communicators).
    """
    func = getattr(send, "func", None)
    if not (isinstance(send, functools.partial) and getattr(func, "__name__", "") == "handle_reply"):
        return None
    if len(send.args) != 1 or not hasattr(send.args[0], "sendPreparedMessage"):
        return None
    return send.args[0]


def prepare(frame: str) -> bytes:
    """``frame`` as a complete WebSocket text message: framed once for every socket."""
    from autobahn.websocket.protocol import PreparedMessage

    # Text, unmasked (server to client), never compressed (daphne does not negotiate it).
    return PreparedMessage(frame.encode(), False, False, True).payloadHybi


def write_now(protocol, data: bytes) -> None:
    """Write a framed message to a daphne socket, straight to the kernel when it can.

    Twisted's ``transport.write`` buffers and registers the socket for writing with the
    event loop (an epoll modification, and asyncio's selector rebuilds a key for it), then
    writes on the next turn and unregisters: at 2,000 viewers that was 64 % of the server's
    CPU during a push (py-spy), against 1 % for the framing. When nothing of the socket's
    is waiting in Twisted's buffer, this sends now (what asyncio's own transports do); only
    what the kernel does not take goes through Twisted. Anything unusual (TLS, a buffer
    not empty, a transport of another shape) takes Twisted's way.
    """
    transport = protocol.transport
    sock = getattr(transport, "socket", None)
    if (
        sock is not None
        and not getattr(transport, "TLS", True)
        and transport.connected
        and not transport.disconnecting
        and not getattr(transport, "_tempDataLen", 1)
        and len(getattr(transport, "dataBuffer", b"x")) == getattr(transport, "offset", -1)
    ):
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            return  # the connection is going; Twisted's reading side notices and closes it
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


class StreamBroadcaster:
    """All viewer sockets of one stream in this process and event loop. Use ``attach``."""

    def __init__(self, stream_id: int, layer):
        self.stream_id = stream_id
        self.layer = layer
        self.channel: str | None = None
        self.groups: set[str] = set()
        self.feed = StreamFeed(stream_id, publish=self._publish, regroup=self._regroup)
        # The sockets that get every message: consumer -> its daphne protocol, or None.
        self.sockets: dict = {}
        self.members = 0  # sockets attached, welcomed or not yet
        self.closing = False
        self.started: asyncio.Future | None = None
        self.task: asyncio.Task | None = None
        # The snapshot read under way, which sockets connecting meanwhile share.
        self.reading: asyncio.Future | None = None
        # For tests and diagnostics.
        self.reads = 0
        self.frames = 0
        self.receive_errors = 0
        self.handle_errors = 0

    # -- life cycle ---------------------------------------------------------------------------

    async def _start(self, load_pins: Callable[[], Awaitable[list[dict]]]) -> None:
        pins = await load_pins()
        self.channel = await self.layer.new_channel()
        join, _ = self.feed.follow(pins)
        for group in stream_groups(self.stream_id) + join:
            await self.layer.group_add(group, self.channel)
            self.groups.add(group)
        self.task = asyncio.create_task(self._run(), name=f"stream-broadcaster-{self.stream_id}")

    def mark(self) -> int:
        """Note this before reading a snapshot; give it to ``welcome``."""
        return self.feed.changes

    async def snapshot(self, read: Callable[[], Awaitable[dict]]) -> tuple[dict, int]:
        """``(snapshot, since)`` for a new socket: ``read()`` (``stream_snapshot``) started
        after ``since = mark()``, or the read already under way, shared. Give both to
        ``welcome``; the snapshot is shared, so nobody may change it. What the read raises
        (``StreamNotFound``) every socket waiting for it gets."""
        if self.reading is None:
            self.reading = asyncio.ensure_future(self._read(read, self.mark()))
        # Shielded: one socket giving up (its client left) must not cancel the others' read.
        return await asyncio.shield(self.reading)

    async def _read(self, read: Callable[[], Awaitable[dict]], since: int) -> tuple[dict, int]:
        try:
            self.reads += 1
            return await read(), since
        finally:
            self.reading = None

    async def welcome(self, socket, snapshot: dict, *, since: int, fields_since: int | None = None, **fields) -> None:
        """Send ``socket`` its first message, the snapshot (``stream_snapshot``, read after
        ``attach`` and ``mark``: ``snapshot()``) merged with what arrived here since, with
        ``fields`` (read after the mark ``fields_since``, default ``since``) and the current
        ``seq``; from then on it gets every message."""
        async with self.feed.lock:
            merged = await self.feed.adopt(snapshot, since=since)
            fields = self.feed.patched(fields, since=since if fields_since is None else fields_since)
            frame = encode({"type": "snapshot", **merged, **fields, "seq": self.feed.seq})
            await socket.base_send({"type": "websocket.send", "text": frame})
            self.sockets[socket] = daphne_socket(socket.base_send)

    def _release(self, socket) -> bool:
        self.sockets.pop(socket, None)
        self.members -= 1
        if self.members > 0 or self.closing:
            return False
        self.closing = True
        _forget(self)
        return True

    async def detach(self, socket) -> None:
        """``socket`` is gone; the last one out tears the broadcaster down."""
        if self._release(socket):
            await self.close()

    def detach_soon(self, socket) -> None:
        """``detach`` from code that cannot wait (a cancelled consumer)."""
        if self._release(socket):
            task = asyncio.ensure_future(self.close())
            _closing.add(task)
            task.add_done_callback(_closing.discard)

    async def close(self) -> None:
        """Stop receiving and leave the groups (the sockets are all gone)."""
        self.closing = True
        self.feed.close()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for group in sorted(self.groups) if self.channel else ():
            try:
                await self.layer.group_discard(group, self.channel)
            except Exception:
                log.exception("stream %s: leaving %s failed", self.stream_id, group)
        self.groups.clear()

    # -- receiving ----------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = RETRY_FIRST
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception as error:
                # E.g. the core layer's idle TimeoutError, or Redis going away: keep the
                # sockets, try again shortly.
                self.receive_errors += 1
                # The core layer's idle timeout (redis-py's TimeoutError) comes every 5 s on a
                # quiet stream: no alarm, no traceback.
                timeout = isinstance(error, TimeoutError) or type(error).__name__ == "TimeoutError"
                log.log(
                    logging.INFO if timeout else logging.WARNING,
                    "stream %s: channel layer receive failed (%r); retrying in %.1f s",
                    self.stream_id,
                    error,
                    delay,
                    exc_info=not timeout,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MOST)
                continue
            delay = RETRY_FIRST
            try:
                await self.feed.handle(message)
            except Exception:
                self.handle_errors += 1
                log.exception("stream %s: could not handle %s", self.stream_id, message.get("type"))

    async def _regroup(self, join: list[str], leave: list[str]) -> None:
        for group in join:
            try:
                await self.layer.group_add(group, self.channel)
                self.groups.add(group)
            except Exception:
                log.exception("stream %s: joining %s failed", self.stream_id, group)
        for group in leave:
            self.groups.discard(group)
            try:
                await self.layer.group_discard(group, self.channel)
            except Exception:
                log.exception("stream %s: leaving %s failed", self.stream_id, group)

    # -- sending ------------------------------------------------------------------------------

    async def _publish(self, messages: list[dict]) -> None:
        """Each message encoded once, written to every socket; a failing socket is dropped."""
        for message in messages:
            frame = encode(message)
            prepared = None
            self.frames += 1
            for socket, protocol in list(self.sockets.items()):
                try:
                    if protocol is None:
                        await socket.base_send({"type": "websocket.send", "text": frame})
                    elif protocol.state == protocol.STATE_OPEN:  # daphne drops sends to closed ones too
                        prepared = prepared or prepare(frame)
                        write_now(protocol, prepared)
                except Exception:
                    self.sockets.pop(socket, None)
                    log.info("stream %s: dropped a viewer socket whose send failed", self.stream_id, exc_info=True)
            # A stock frame's ts is the commit time of its newest change (apps/streams/feed.py):
            # commit to the last local socket written, once per frame (cc_fanout_lag_seconds).
            committed = message.get("ts")
            if committed and self.sockets:
                FANOUT_LAG_SECONDS.observe(max(0.0, time.time() - committed))


# -- one per (event loop, stream) ---------------------------------------------------------------

_broadcasters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, StreamBroadcaster]] = (
    weakref.WeakKeyDictionary()
)
_closing: set[asyncio.Task] = set()


async def attach(stream_id: int, load_pins: Callable[[], Awaitable[list[dict]]]) -> StreamBroadcaster:
    """The stream's broadcaster on this event loop, started (groups joined) if it was not:
    only then is ``load_pins()`` (``stream_pinned_skus``) awaited, for the SKU groups to
    join; what it raises (``StreamNotFound``) ``attach`` raises. Unless ``attach`` raised,
    the caller must ``detach`` (or ``detach_soon``) exactly once, whatever happens."""
    streams = _broadcasters.setdefault(asyncio.get_running_loop(), {})
    broadcaster = streams.get(stream_id)
    if broadcaster is None:
        broadcaster = streams[stream_id] = StreamBroadcaster(stream_id, get_channel_layer())
        broadcaster.started = asyncio.ensure_future(broadcaster._start(load_pins))
        broadcaster.started.add_done_callback(lambda started: _failed_start(broadcaster, started))
    broadcaster.members += 1
    try:
        await asyncio.shield(broadcaster.started)
    except BaseException:
        broadcaster.detach_soon(None)
        raise
    return broadcaster


def broadcaster_for(stream_id: int) -> StreamBroadcaster | None:
    """This event loop's broadcaster of the stream, if it has one (tests, diagnostics)."""
    return _broadcasters.get(asyncio.get_running_loop(), {}).get(stream_id)


def _failed_start(broadcaster: StreamBroadcaster, started: asyncio.Future) -> None:
    if started.cancelled() or started.exception() is not None:
        _forget(broadcaster)  # the next socket starts afresh; the attached ones detach


def _forget(broadcaster: StreamBroadcaster) -> None:
    streams = _broadcasters.get(asyncio.get_running_loop(), {})
    if streams.get(broadcaster.stream_id) is broadcaster:
        del streams[broadcaster.stream_id]
