"""Prometheus metrics: ``GET /metrics`` (docs/operations.md, "Metrics").

Two kinds of figures:

- **Counted as things happen**, in the process they happen in: requests and their latency
  (``creatorcommerce/observe.py``), buys by outcome (``apps/orders/api.py``), admissions
  (the admission control), fan-out lag (``apps/streams/broadcast.py``). With
  ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus-client keeps them in memory-mapped files in
  that directory, one per process, and a scrape of any process adds up every process's
  files: several server processes behind a proxy answer one total. Without it (one
  process: the demo), they live in this process's memory.
- **Read at scrape time** (``scrape_collector``): the outbox backlog, Celery queue depth,
  viewers per live stream, device cues by status. Each is a cheap read (one indexed query,
  or a few Redis commands) of state every process shares, so any process answers the same.
  Apps register theirs from ``AppConfig.ready`` (the core imports no app). A collector that
  fails (its service is down) is left out of that scrape and ``cc_metrics_collector_up``
  says so; the scrape itself never fails for it.

The metric objects are defined here, in one place, so that their names and labels are the
ones the dashboard (deploy/grafana/creatorcommerce.json) and the docs use.
"""

from __future__ import annotations

import contextlib
import glob
import hmac
import ipaddress
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC
from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from .clientip import client_ip, parse_address

log = logging.getLogger(__name__)

# No "_created" series next to each counter and histogram: the multiprocess mode has none
# either, and Prometheus needs none to compute rates.
disable_created_metrics()


def multiprocess_dir() -> str | None:
    """The shared directory of the multiprocess mode, or None (one process). prometheus-client
    reads the variable itself, when it is first imported."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


# -- counted as things happen ----------------------------------------------------------------

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUEST_SECONDS = Histogram(
    "cc_http_request_duration_seconds",
    "HTTP requests by route (the URL pattern, 'unmatched' when none), method and status class "
    "(2xx..5xx): seconds from the request reaching the application to the last byte of the answer.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)

BUYS = Counter(
    "cc_buys",
    "POST /api/v1/orders/ answers by outcome: created, accepted_offline, replayed, sold_out, declined, "
    "refused (any other 4xx), rate_limited, unavailable (503), error (5xx).",
    ["outcome"],
)
BUY_OUTCOMES = (
    "created",
    "accepted_offline",
    "replayed",
    "sold_out",
    "declined",
    "refused",
    "rate_limited",
    "unavailable",
    "error",
)

# The admission control (wired where requests are admitted): lane is the traffic class
# ("creator" before "viewer"), reason why a request was turned away ("overloaded": the
# process is at its bound, 503; "client_limit": the client is over its own share, 429).
ADMISSION_REFUSED = Counter(
    "cc_admission_refused",
    "Requests refused at admission, before any work: by lane (traffic class) and reason.",
    ["lane", "reason"],
)
ADMISSION_IN_FLIGHT = Gauge(
    "cc_admission_in_flight",
    "Requests admitted and not yet answered, by lane (summed over live processes).",
    ["lane"],
    multiprocess_mode="livesum",
)

FANOUT_LAG_SECONDS = Histogram(
    "cc_fanout_lag_seconds",
    "Viewer stock frames: seconds from the commit of the newest change in the frame to its "
    "write to the process's viewer sockets (coalescing included).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0),
)


_refused_children: dict[tuple[str, str], object] = {}
_in_flight_children: dict[str, object] = {}


def admission_refused(lane: str, reason: str) -> None:
    """Count one request refused at admission (``lane``: traffic class, ``reason``:
    ``overloaded`` or ``client_limit``)."""
    child = _refused_children.get((lane, reason))
    if child is None:  # a few lanes and reasons: the label lookup once each
        child = _refused_children[(lane, reason)] = ADMISSION_REFUSED.labels(lane, reason)
    child.inc()


def in_flight(lane: str):
    """The in-flight gauge of ``lane``: ``inc()`` when a request is admitted, ``dec()`` when
    it is answered (in a ``finally``)."""
    child = _in_flight_children.get(lane)
    if child is None:
        child = _in_flight_children[lane] = ADMISSION_IN_FLIGHT.labels(lane)
    return child


_buy_counters = {outcome: BUYS.labels(outcome) for outcome in BUY_OUTCOMES}


def buy_answered(outcome: str) -> None:
    """Count one answer of the buy endpoint (one of ``BUY_OUTCOMES``)."""
    _buy_counters[outcome].inc()


# -- read at scrape time ---------------------------------------------------------------------

Collect = Callable[[], Iterable]
_collectors: dict[str, Collect] = {}


def scrape_collector(name: str) -> Callable[[Collect], Collect]:
    """Register ``fn() -> iterable of metric families`` (``prometheus_client.core``'s
    ``GaugeMetricFamily`` ...), called on every scrape. It must be cheap (one indexed query,
    a few Redis commands) and may raise: a failing collector is left out of that scrape."""

    def register(fn: Collect) -> Collect:
        _collectors[name] = fn
        return fn

    return register


def unregister_collector(name: str) -> None:
    _collectors.pop(name, None)


class _ScrapeTime:
    """The registered collectors, each guarded and timed."""

    def describe(self):
        return []  # never collect at registration (that would run every query)

    def collect(self):
        up = GaugeMetricFamily(
            "cc_metrics_collector_up",
            "1 if the scrape-time collector answered in this scrape, 0 if it failed (its service is down?).",
            labels=["collector"],
        )
        took = GaugeMetricFamily(
            "cc_metrics_collector_duration_seconds",
            "Seconds the scrape-time collector took in this scrape.",
            labels=["collector"],
        )
        merged: dict[str, object] = {}  # two collectors may add samples to one family (stages)
        for name, fn in list(_collectors.items()):
            started = time.perf_counter()
            try:
                families = list(fn())
            except Exception as exc:  # a service that is down costs its figures, never the scrape
                # One line, no traceback: a database that is down would write one per scrape.
                log.warning("metrics collector %s failed: %s: %s", name, type(exc).__name__, exc)
                families, ok = [], 0
            else:
                ok = 1
            up.add_metric([name], ok)
            took.add_metric([name], time.perf_counter() - started)
            for family in families:
                if family.name in merged:
                    merged[family.name].samples.extend(family.samples)
                else:
                    merged[family.name] = family
        yield from merged.values()
        yield up
        yield took


_scrape_time = _ScrapeTime()


def scrape_registry() -> CollectorRegistry:
    """What one scrape exposes: every process's counted figures (multiprocess mode) or this
    process's (with the default process and platform collectors), and the scrape-time ones."""
    path = multiprocess_dir()
    if path:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)
        registry.register(_scrape_time)
        return registry
    return _default_registry()


@lru_cache(maxsize=1)
def _default_registry() -> CollectorRegistry:
    REGISTRY.register(_scrape_time)
    return REGISTRY


def forget_dead_processes(path: str | None = None) -> list[int]:
    """Remove the live-gauge files (``cc_admission_in_flight``) of processes that are gone,
    so that a killed process's requests stop counting as in flight. Counters and histograms
    of dead processes stay: their totals keep adding up. Called once per process at start
    (``CoreConfig.ready``); safe while other processes run."""
    path = path or multiprocess_dir()
    if not path:
        return []
    gone = []
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        match = re.search(r"_(\d+)\.db$", name)
        if not match:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _alive(pid):
            continue
        mark_process_dead(pid, path)
        gone.append(pid)
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


# -- the endpoint ----------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _allowed_networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def scrape_allowed(request) -> bool:
    """A scrape is allowed with ``Authorization: Bearer <METRICS_TOKEN>`` (when the token is
    set), or from a client address (``creatorcommerce/clientip.py``: behind a trusted proxy,
    the address it forwarded) in ``METRICS_ALLOWED_IPS``."""
    token = settings.METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        if sent.startswith("Bearer ") and hmac.compare_digest(sent[7:].strip().encode(), token.encode()):
            return True
    address = parse_address(client_ip(request))
    if address is None:
        return False
    return any(address in network for network in _allowed_networks(tuple(settings.METRICS_ALLOWED_IPS)))


@never_cache
@require_GET
def metrics_view(request):
    if not scrape_allowed(request):
        return JsonResponse(
            {
                "code": "metrics_forbidden",
                "message": "Metrics are served to the addresses in METRICS_ALLOWED_IPS, or with the bearer "
                "token METRICS_TOKEN.",
            },
            status=403,
        )
    # The text format Prometheus asks for (OpenMetrics when its Accept header says so).
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encode(scrape_registry()), content_type=content_type)


@contextlib.contextmanager
def scrape_query(timeout_ms: int = 2000):
    """A cursor for a scrape-time query; on PostgreSQL in a transaction of its own with a
    statement timeout, so a slow database costs one figure, not a stuck scrape. ORM queries
    run inside the block share that transaction, and so the timeout. (Inside a caller's
    transaction the block is a savepoint: the caller's timeout is put back after it.)"""
    postgres = connection.vendor == "postgresql"
    outer = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        previous = None
        if postgres:
            if outer:
                cursor.execute("SELECT current_setting('statement_timeout')")
                previous = cursor.fetchone()[0]
            cursor.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
        yield cursor
        if previous is not None:  # after an error the savepoint's rollback puts it back
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])


def as_aware(value):
    """A timestamp read with raw SQL: a datetime on PostgreSQL, text on SQLite (UTC)."""
    if value is None or not isinstance(value, str):
        return value
    parsed = parse_datetime(value)
    if parsed is not None and timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


# -- the core's scrape-time figures ------------------------------------------------------------

# kombu's Redis transport keeps a queue in a list of the queue's name, and messages sent with a
# priority in one list per priority step (the name, "\x06\x16", the step).
_KOMBU_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


@lru_cache(maxsize=4)
def _broker_client(url: str):
    import redis

    # Short timeouts: a broker that does not answer costs this collector, not the scrape.
    return redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)


@scrape_collector("celery.queues")
def celery_queues():
    """``cc_celery_queue_length{queue}``: messages waiting in each Celery queue, with a Redis
    broker (LLEN). Without a broker (tasks run in-process) there is no queue; with RabbitMQ,
    its own Prometheus plugin has the figure."""
    url = settings.CELERY_BROKER_URL
    if settings.CELERY_TASK_ALWAYS_EAGER or not url.startswith(("redis://", "rediss://", "unix://")):
        return []
    names = [queue.name for queue in settings.CELERY_TASK_QUEUES]
    with _broker_client(url).pipeline(transaction=False) as pipe:
        for name in names:
            for suffix in _KOMBU_PRIORITY_SUFFIXES:
                pipe.llen(name + suffix)
        lengths = pipe.execute()
    family = GaugeMetricFamily(
        "cc_celery_queue_length", "Messages waiting in the Celery queue (Redis broker).", labels=["queue"]
    )
    steps = len(_KOMBU_PRIORITY_SUFFIXES)
    for i, name in enumerate(names):
        family.add_metric([name], sum(lengths[i * steps : (i + 1) * steps]))
    return [family]
