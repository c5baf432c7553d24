"""Driving ``creatorcommerce.asgi.application`` in process as an ASGI server would, for the
overload tests: many requests at once on the test's event loop, each answer with its status,
headers and JSON body."""

from __future__ import annotations

import json
import threading
from importlib import import_module

from django.conf import settings
from django.contrib.auth import login
from django.http import HttpRequest

from tests.helpers import asgi_call


class Answer:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:200]!r}>"


async def call(path: str, method: str = "GET", *, headers: dict | None = None, body=None) -> Answer:
    """One request through the whole ASGI app; ``body`` (a dict) is sent as JSON."""
    raw = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body or b""
    headers = dict(headers or {})
    if raw:
        headers.setdefault("Content-Type", "application/json")
    return Answer(*await asgi_call(path, method, headers=headers, body=raw))


def session_token(user) -> str:
    """A signed-in session's key: sent as ``X-Session-Token`` (allauth headless)."""
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = "127.0.0.1"
    request.session = import_module(settings.SESSION_ENGINE).SessionStore()
    login(request, user, backend="apps.accounts.backends.ModelBackend")
    request.session.save()
    return request.session.session_key


class QueryCounter:
    """Every SQL statement any thread sends while it is installed (Django's query capture
    sees only the calling thread's connection; requests run on the pool's threads)."""

    def __init__(self):
        self.statements: list[str] = []
        self.lock = threading.Lock()

    def __len__(self):
        return len(self.statements)
