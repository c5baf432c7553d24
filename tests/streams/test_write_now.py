"""apps.streams.broadcast.write_now: a framed message goes straight to the kernel only when
nothing of the socket's waits in Twisted's buffer, and whatever the kernel does not take
follows through Twisted, in order. On real sockets (a socketpair) with a transport that
has Twisted's buffer attributes; under real daphne the path is covered end to end by
test_multiprocess.py and test_browser.py (a browser rejects a malformed frame)."""

from __future__ import annotations

import socket

from apps.streams.broadcast import daphne_socket, prepare, write_now


class Transport:
    """The attributes of twisted.internet.tcp.Connection that write_now reads."""

    TLS = False
    connected = True
    disconnecting = False

    def __init__(self, sock):
        self.socket = sock
        self.dataBuffer, self.offset, self._tempDataLen = b"", 0, 0
        self.written: list[bytes] = []

    def write(self, data):  # Twisted's: buffered, sent on a later turn of the loop
        self.written.append(data)
        self._tempDataLen += len(data)


class Protocol:
    def __init__(self, transport):
        self.transport = transport


def _pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def test_an_idle_socket_gets_the_frame_from_the_kernel_at_once():
    a, b = _pair()
    transport = Transport(a)
    frame = prepare('{"type":"stock","seq":1}')
    write_now(Protocol(transport), frame)
    assert transport.written == [] and b.recv(1024) == frame
    assert frame[0] == 0x81 and frame[1] == len('{"type":"stock","seq":1}')  # FIN + text, unmasked


def test_behind_a_waiting_buffer_the_frame_queues_after_it():
    a, b = _pair()
    transport = Transport(a)
    transport.write(b"earlier")
    write_now(Protocol(transport), b"later")
    assert transport.written == [b"earlier", b"later"]
    try:  # nothing went around the buffer
        arrived = b.recv(1024)
    except BlockingIOError:
        arrived = b""
    assert arrived == b""


def test_what_the_kernel_does_not_take_follows_through_twisted():
    a, b = _pair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    transport = Transport(a)
    data = bytes(range(256)) * 4096  # 1 MiB: more than the socket buffers hold
    write_now(Protocol(transport), data)
    assert len(transport.written) == 1 and 0 < len(transport.written[0]) < len(data)
    received = bytearray()
    while True:
        try:
            chunk = b.recv(1 << 20)
        except BlockingIOError:
            break
        received += chunk
    assert bytes(received) + transport.written[0] == data


def test_tls_and_other_transports_take_twisteds_way():
    a, b = _pair()
    transport = Transport(a)
    transport.TLS = True
    write_now(Protocol(transport), b"frame")
    assert transport.written == [b"frame"]
    try:
        arrived = b.recv(1024)
    except BlockingIOError:
        arrived = b""
    assert arrived == b""


def test_only_daphnes_send_is_recognised():
    import functools

    class Server:
        async def handle_reply(self, protocol, message): ...

    class WebSocketProtocol:
        def sendPreparedMessage(self, prepared): ...

    protocol = WebSocketProtocol()
    assert daphne_socket(functools.partial(Server().handle_reply, protocol)) is protocol
    assert daphne_socket(functools.partial(Server().handle_reply, object())) is None

    async def send(message): ...

    assert daphne_socket(send) is None
