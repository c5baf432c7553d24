"""Helpers for tests of the stream WebSockets, driven through the real ASGI application
(origin guard, session auth, routing). Fixtures (``layer``, ``stream_setup``,
``session_key``) are in conftest.py."""

from __future__ import annotations

import asyncio
import time

from channels.testing import WebsocketCommunicator

from apps.streams.tokens import viewer_token_issue
from creatorcommerce.asgi import application
from tests.helpers import WAIT

ORIGIN = "http://testserver"


def new_session() -> str:
    """A real anonymous session (the socket's session must exist to be bound to)."""
    from importlib import import_module

    from django.conf import settings

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store.create()
    return store.session_key


def token_for(stream, *, session_key, user_id=None, origin=ORIGIN, stream_id=None):
    token, _ = viewer_token_issue(
        stream_id=stream_id or stream.pk, user_id=user_id, session_key=None if user_id else session_key, origin=origin
    )
    return token


async def open_socket(stream, token, *, session_key, origin=ORIGIN, path=None, app=None):
    headers = [(b"cookie", f"sessionid={session_key}".encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    comm = WebsocketCommunicator(app or application, path or f"/ws/streams/{stream.pk}/?token={token}", headers=headers)
    connected, _ = await comm.connect(timeout=WAIT)
    assert connected
    return comm


async def open_viewer(stream, *, app=None):
    """A viewer with its own session, connected; returns (communicator, snapshot)."""
    from asgiref.sync import sync_to_async

    key = await sync_to_async(new_session)()
    comm = await open_socket(stream, token_for(stream, session_key=key), session_key=key, app=app)
    snapshot = await comm.receive_json_from(timeout=WAIT)
    assert snapshot["type"] == "snapshot"
    return comm, snapshot


async def close_code(comm) -> int:
    message = await comm.receive_output(timeout=WAIT)
    assert message["type"] == "websocket.close"
    return message["code"]


async def collect(comm, seconds: float) -> list[dict]:
    """Everything the socket sends within ``seconds``. (A receive that times out would cancel
    the consumer, so poll with receive_nothing, which does not.)"""
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await comm.receive_nothing(timeout=0.02, interval=0.005):
            continue
        out.append(await comm.receive_json_from(timeout=1))
    return out


async def receive_until(comm, done, *, timeout: float = WAIT) -> list[dict]:
    """The socket's messages up to the one after which ``done(messages so far)`` holds;
    fails after ``timeout`` seconds with what arrived."""
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await comm.receive_nothing(timeout=0.02, interval=0.005):
            continue
        out.append(await comm.receive_json_from(timeout=1))
        if done(out):
            return out
    raise AssertionError(f"timed out; received {out}")


async def until(condition, *, timeout: float = WAIT, interval: float = 0.01, what: str = "condition"):
    """Poll ``condition()`` (sync or async) until it is true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)
