"""Admission control: a process takes no more requests than it can answer in time.

A request's Django code runs in the process's pool of ``ASGI_SYNC_THREADS`` threads
(creatorcommerce/handlers.py); what the threads cannot take yet waits for one. One process
answers about 235 buys a second: offered 400, that wait grew without bound (p99 7 s) and
every buyer waited, winners and losers alike. Here each process admits at most
``ADMISSION_MAX_IN_FLIGHT`` requests into the pool (running or waiting for a thread); a
request beyond that is answered at once, on the event loop, before any session,
authentication or database work: ``503 {"code": "overloaded", "message", "retry_after"}``
with ``Retry-After`` (1 to ``ADMISSION_RETRY_AFTER_SECONDS`` seconds, at random, so that a
refused crowd does not come back in the same second). 429 ``rate_limited`` stays the answer
to a client over its own limit (the throttles, in the view).

Creator traffic first: every request gets a class from its method and path, with no
database (``classify``). Creators' control-room actions (writes to a stream's controls,
pins and deals, drops, stock, device cues, the admin's forms) and the media server's hook
may use the last ``ADMISSION_CREATOR_RESERVE`` places; viewers' buys and reads may not, so
they are refused first. Health probes (``/livez``, ``/healthz``) are always admitted: a
busy process is not a dead one; so are static files (``STATIC_URL``), outside the count: a
page's burst of scripts and styles must not fail (serve them from the proxy or a CDN in
production). WebSockets are not HTTP requests and are not counted.

Apps may also answer a request on the event loop before admission (``early_answer``), when
they can without the pool at all: a buy of something this process knows to be sold out
(apps/orders/soldout.py).

Sizing (docs/overload.md, "How it was sized"): a request waits for those admitted before it.
A saturated process (bench/overload.py) answered as many buys a second with 4 in flight as
with 24, and every answer, refusals included, waited about the bound times a buy's time on
the core: 8 keeps that within the buy's 100 ms budget, and 6 of them for viewers take one
browser's parallel requests (6 connections to a host) even when they come at once.

The counters (``stats()``) are plain numbers per process, for metrics.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from typing import NamedTuple

from django.conf import settings

from creatorcommerce import metrics
from creatorcommerce.process import PerProcess

PROBE, ASSET, CREATOR, MEDIA, BUY, VIEWER = "probe", "asset", "creator", "media", "buy", "viewer"
CLASSES = (PROBE, ASSET, CREATOR, MEDIA, BUY, VIEWER)
# May take the places reserved for creators.
PRIORITY = frozenset({CREATOR, MEDIA})
# Always admitted. Probes count in flight; static files do not (a page's scripts and styles,
# ~0.3 ms each and no database: a burst of them must neither be refused nor crowd out buys).
EXEMPT = frozenset({PROBE, ASSET})

# /metrics too: an operator must see an overload while it happens (it is loopback-only or
# token-guarded, docs/operations.md "Metrics", and one scraper asks every few seconds).
_PROBES = frozenset({"/livez", "/healthz", "/metrics"})
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
# Creators' writes: a drop (create, edit, cancel), its controls (start, end), pins and deals
# (/api/v1/streams/...; not a viewer's viewer-token or reminder), a device cue fired from
# the control room, a SKU's stock, and the admin's forms.
_CREATOR_WRITES = re.compile(
    r"/api/v1/(?:streams/(?:\d+/(?:start|end|cancel|pins/.*|deals/.*)?)?|devices/\d+/cues/|skus/[^/]+/stock/)\Z"
    r"|/admin/"
)
MEDIA_PREFIX = "/hooks/media/"
BUY_PATH = "/api/v1/orders/"

OVERLOADED_MESSAGE = "The server is busy; try again in a moment."


class Answer(NamedTuple):
    """An HTTP answer sent from the event loop (no Django response)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def path_of(scope: dict) -> str:
    path, root = scope["path"], scope.get("root_path") or ""
    return path[len(root) :] if root and path.startswith(root) else path


def classify(method: str, path: str) -> str:
    """The admission class of a request, from its method and path alone."""
    if path in _PROBES:
        return PROBE
    if path.startswith(settings.STATIC_URL) and method in _READS:
        return ASSET
    if path.startswith(MEDIA_PREFIX):
        return MEDIA
    if method not in _READS and _CREATOR_WRITES.match(path):
        return CREATOR
    if method == "POST" and path == BUY_PATH:
        return BUY
    return VIEWER


class Admission:
    """One process's requests in the pool, and what was admitted and refused, by class.
    Touched on the event loop only (no lock)."""

    def __init__(self):
        self.in_flight = 0  # admitted and not done, static files aside
        self.assets_in_flight = 0
        self.peak = 0  # the most in flight at once since the process started
        self.admitted = dict.fromkeys(CLASSES, 0)
        self.refused = dict.fromkeys(CLASSES, 0)
        self.answered_early: dict[str, int] = {}

    def admit(self, cls: str) -> bool:
        """Take a place for a request of class ``cls``; False: refuse it (nothing taken).
        An admitted request is given back with ``release(cls)`` once its Django code is done."""
        limit = settings.ADMISSION_MAX_IN_FLIGHT
        if limit and cls not in EXEMPT:
            bound = limit if cls in PRIORITY else limit - settings.ADMISSION_CREATOR_RESERVE
            if self.in_flight >= bound:
                self.refused[cls] += 1
                metrics.admission_refused(cls, "overloaded")
                if cls == BUY:
                    metrics.buy_answered("unavailable")  # cc_buys_total counts every buy answer
                return False
        self.admitted[cls] += 1
        if cls == ASSET:
            self.assets_in_flight += 1
        else:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        metrics.in_flight(cls).inc()
        return True

    def release(self, cls: str) -> None:
        if cls == ASSET:
            self.assets_in_flight -= 1
        else:
            self.in_flight -= 1
        metrics.in_flight(cls).dec()


_admission: PerProcess[Admission] = PerProcess(Admission)


def admission() -> Admission:
    return _admission.get()


def stats() -> dict:
    """This process's counters: ``in_flight`` now, ``peak``, and per class how many
    requests were ``admitted`` and ``refused`` since it started; ``answered_early`` per
    early answer (``sold_out``: buys answered from memory)."""
    state = admission()
    return {
        "limit": settings.ADMISSION_MAX_IN_FLIGHT,
        "creator_reserve": settings.ADMISSION_CREATOR_RESERVE,
        "in_flight": state.in_flight,
        "assets_in_flight": state.assets_in_flight,
        "peak": state.peak,
        "admitted": dict(state.admitted),
        "refused": dict(state.refused),
        "answered_early": dict(state.answered_early),
    }


def _security_headers() -> list[tuple[bytes, bytes]]:
    """What the middleware chain would have added to any answer."""
    headers = [(b"x-frame-options", settings.X_FRAME_OPTIONS.encode())]
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append((b"x-content-type-options", b"nosniff"))
    return headers


def json_answer(status: int, body: dict, *extra: tuple[bytes, bytes]) -> Answer:
    return Answer(
        status,
        [(b"content-type", b"application/json"), *extra, *_security_headers()],
        json.dumps(body, separators=(",", ":")).encode(),
    )


def refusal(path: str) -> Answer:
    """503 overloaded with Retry-After: JSON under the API's prefixes, plain text for pages."""
    from creatorcommerce.api import error_body, is_api_path  # DRF: not before Django is set up

    seconds = random.randint(1, settings.ADMISSION_RETRY_AFTER_SECONDS)
    extra = ((b"retry-after", str(seconds).encode()), (b"cache-control", b"no-store"))
    if is_api_path(path):
        return json_answer(503, error_body("overloaded", OVERLOADED_MESSAGE, retry_after=seconds), *extra)
    return Answer(
        503,
        [(b"content-type", b"text/plain; charset=utf-8"), *extra, *_security_headers()],
        f"The server is busy; try again in {seconds} s.".encode(),
    )


async def send_answer(send, answer: Answer) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [*answer.headers, (b"content-length", str(len(answer.body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": answer.body})


# -- answers on the event loop, before admission ----------------------------------------------

EarlyAnswer = Callable[[dict, bytes], "Answer | None"]
_early: dict[tuple[str, str], tuple[str, EarlyAnswer]] = {}


def early_answer(method: str, path: str, *, name: str) -> Callable[[EarlyAnswer], EarlyAnswer]:
    """Register ``fn(scope, body) -> Answer | None`` for ``method`` ``path``: called on the
    event loop with the request's body before admission; an Answer is sent as it is (no
    middleware, no view), None lets the request go on. It must be cheap (microseconds),
    must not block and must touch no database: every request to that path pays for it."""

    def register(fn: EarlyAnswer) -> EarlyAnswer:
        _early[(method, path)] = (name, fn)
        return fn

    return register


def answer_early(scope: dict, path: str, body_file) -> Answer | None:
    entry = _early.get((scope["method"], path))
    if entry is None:
        return None
    name, fn = entry
    body = body_file.read()
    body_file.seek(0)
    answer = fn(scope, body)
    if answer is not None:
        counts = admission().answered_early
        counts[name] = counts.get(name, 0) + 1
        if path == BUY_PATH and name in metrics.BUY_OUTCOMES:
            metrics.buy_answered(name)  # the view never sees it: count it here (cc_buys_total)
    return answer
