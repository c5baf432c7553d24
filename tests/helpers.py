"""Helpers shared by test modules (fixtures live in conftest.py files)."""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser

from django.db import connection

from creatorcommerce.spine.models import OutboxEvent

WORKERS = 40

# Seconds a test waits for something that must arrive (a socket message, an event). A passing
# test waits only as long as the thing takes; the figure only bounds a failing one, and is
# generous because CI shares two cores with the services (runs 9x slower than a quiet machine
# have been seen). Waits for something that must *not* arrive stay short.
WAIT = 20.0


def run_concurrently(fn, args_list, *, workers: int = WORKERS):
    """Run ``fn(*args)`` for every args in parallel threads, released together by a barrier;
    each thread has, and closes, its own database connection."""
    parties = min(workers, len(args_list))
    barrier = threading.Barrier(parties)

    def call(index, args):
        try:
            # The first ``parties`` calls start together; the rest follow as threads free up
            # (a barrier for them would wait out its timeout on the last, short batch).
            if index < parties:
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait(timeout=30)
            return fn(*args)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(call, range(len(args_list)), args_list))


def last_event_id() -> int:
    last = OutboxEvent.objects.order_by("-id").first()
    return last.pk if last else 0


def events_since(mark: int, *types: str) -> list[OutboxEvent]:
    qs = OutboxEvent.objects.filter(pk__gt=mark).order_by("id")
    return list(qs.filter(type__in=types) if types else qs)


class CapturedEvents(list):
    """The ``(type, payload, groups)`` of every event recorded inside ``captured_events()``,
    in order, as the outbox stored them (what consumers and other nodes receive)."""

    def of(self, *types: str) -> list[tuple[str, dict, list]]:
        return [event for event in self if event[0] in types]


@contextlib.contextmanager
def captured_events():
    """Zulip's ``verify_action`` for the spine: collect the events the block emits, each
    checked against its declared schema (whatever ``SPINE_CHECK_EVENTS`` says), so a test
    asserts the exact events a service sends::

        with captured_events() as events:
            address_set(user=buyer, ...)
        assert events == [("address.updated", {"user": buyer.pk}, [])]
    """
    from creatorcommerce.spine.event_schema import check

    events = CapturedEvents()
    mark = last_event_id()
    yield events
    for event in events_since(mark):
        check(event.type, event.payload)
        events.append((event.type, event.payload, event.groups))


def expected_stock_changed(sku, available: int) -> tuple[str, dict, list]:
    """The ``stock.changed`` a service must have sent for ``sku``'s one stock row, which
    holds ``available`` units now (asserted), at the row's current version."""
    from apps.catalog.models import StockLevel

    level = StockLevel.objects.get(sku=sku)
    assert level.available == available
    payload = {
        "sku": sku.code,
        "sku_id": sku.pk,
        "shop": sku.shop_id,
        "level": level.pk,
        "available": available,
        "version": level.version,
    }
    return ("stock.changed", payload, [f"sku.{sku.pk}"])


def use_redis_layer(settings, redis_url: str, kind: str):
    """Make the default channel layer channels-redis (``kind``: "pubsub" or "core") on the
    real Redis for one test; returns the layer."""
    from channels.layers import channel_layers

    backend = {
        "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "core": "channels_redis.core.RedisChannelLayer",
    }[kind]
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": backend, "CONFIG": {"hosts": [redis_url], "prefix": f"test{os.getpid()}"}}
    }
    channel_layers.backends.clear()
    return channel_layers["default"]


# -- admin pages posted as a browser would ----------------------------------------------


class _FormInputs(HTMLParser):
    """The name/value pairs a browser would submit from the page's change form."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.data: dict[str, str] = {}
        self._in_form = False
        self._select: str | None = None
        self._select_value: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("id") or "").endswith("_form"):
            self._in_form = True
        if not self._in_form:
            return
        name = a.get("name")
        if tag == "input" and name and "__prefix__" not in name:
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.data[name] = a.get("value") or "on"
                return
            self.data[name] = a.get("value") or ""
        elif tag == "select" and name and "__prefix__" not in name:
            self._select, self._select_value, self._first_option = name, None, None
        elif tag == "option" and self._select:
            value = a.get("value") or ""
            if self._first_option is None:
                self._first_option = value
            if "selected" in a:
                self._select_value = value
        elif tag == "textarea" and name and "__prefix__" not in name:
            self._textarea = name
            self.data[name] = ""

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "select" and self._select:
            chosen = self._select_value if self._select_value is not None else self._first_option
            self.data[self._select] = chosen or ""
            self._select = None
        elif tag == "textarea":
            if self._textarea:
                self.data[self._textarea] = self.data[self._textarea].removeprefix("\n")
            self._textarea = None


def page_form(client, url) -> dict[str, str]:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    parser = _FormInputs()
    parser.feed(response.content.decode())
    assert parser.data, "no change form on the page"
    return parser.data


def inline_row(data, prefix: str, obj) -> str:
    """The ``<prefix>-<n>`` prefix of ``obj``'s row of an inline formset in the posted data."""
    for key, value in data.items():
        if key.startswith(f"{prefix}-") and key.endswith("-id") and value == str(obj.pk):
            return key[: -len("-id")]
    raise AssertionError(f"{obj!r} is not on the page")


def wait_for(condition, timeout: float = 10.0, step: float = 0.02, *, message: str = ""):
    """Poll ``condition`` until it returns something truthy (and return it); fail after
    ``timeout`` seconds. Tests wait for a condition this way, never for a fixed time."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {message or condition}")
        time.sleep(step)


# -- GET /metrics ----------------------------------------------------------------------------


class Scrape(dict):
    """A scrape of /metrics: ``{(sample name, ((label, value), ...)): value}``, with the
    families' names and types (``families``)."""

    families: dict[str, str]

    def value(self, name: str, **labels) -> float:
        """The sample's value, 0 when the scrape does not have it (a counter not counted yet)."""
        return self.get((name, tuple(sorted(labels.items()))), 0.0)

    def labelled(self, name: str) -> list[dict]:
        return [dict(labels) for sample, labels in self if sample == name]


def parse_scrape(text: str) -> Scrape:
    from prometheus_client.parser import text_string_to_metric_families

    scrape = Scrape()
    scrape.families = {}
    for family in text_string_to_metric_families(text):
        scrape.families[family.name] = family.type
        for sample in family.samples:
            scrape[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return scrape


def scrape(client, **extra) -> Scrape:
    """GET /metrics with Django's test client (from 127.0.0.1, allowed by default)."""
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse_scrape(response.content.decode())


async def asgi_call(path: str, method: str = "GET", *, headers: dict | None = None, body: bytes = b"") -> tuple:
    """One request through ``creatorcommerce.asgi.application`` in process, as an ASGI server
    would send it: (status, headers with lower-case names, body)."""
    import asyncio

    from creatorcommerce.asgi import application

    raw_headers = [(b"host", b"testserver")]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    chunked = any(k.lower() == "transfer-encoding" for k in (headers or {}))
    if body and not chunked:  # a chunked request has no Content-Length: the size shows once read
        raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    inbox = [{"type": "http.request", "body": body, "more_body": False}]
    sent = []

    async def receive():
        if inbox:
            return inbox.pop(0)
        await asyncio.Event().wait()  # the client stays connected (Django listens for a disconnect)

    async def send(message):
        sent.append(message)

    await application(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, payload
