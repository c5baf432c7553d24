"""The outbox's handler backlog, read at scrape time (docs/operations.md, "Metrics").

An event is delivered to its handlers after commit; each run leaves a ``HandlerRun`` row.
The backlog is the (event, handler) pairs still without one: handler work queued or
running, or lost with a broker that was down until ``redeliver_pending`` finds it. It is
counted among the newest ``WINDOW`` events only (one query: a backward scan of the
primary key and one probe of the (event, handler) unique index per pair), so a scrape costs
the same however long the outbox is; a backlog near ``WINDOW`` means at least that much.
A handler whose ``redeliver_within`` has passed for an event is not waited for (it never
runs for it: a cue too old to be of use).
"""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from creatorcommerce.metrics import as_aware, scrape_collector, scrape_query
from creatorcommerce.sql import cast_type, names

from .models import HandlerRun, OutboxEvent
from .registry import redeliver_within, subscribed_types

WINDOW = 5000
# redeliver_pending's horizon: older events are not handed to their handlers again.
HORIZON = timedelta(hours=24)


def backlog_families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    backlog = GaugeMetricFamily(
        "cc_outbox_backlog",
        "Outbox work not done yet, by stage: handlers (event-handler pairs without a run, among the newest "
        f"{WINDOW} events), relay (an edge's events the cloud has not acknowledged).",
        labels=["stage"],
    )
    age = GaugeMetricFamily(
        "cc_outbox_backlog_age_seconds",
        "Age of the oldest event still waiting in the stage (0 when none waits).",
        labels=["stage"],
    )
    return backlog, age


def handler_backlog(now=None) -> tuple[int, object]:
    """(pending event-handler pairs among the newest WINDOW events, the oldest one's time)."""
    now = now or timezone.now()
    pairs = []
    for event_type, handlers in subscribed_types().items():
        for name in handlers:
            within = redeliver_within(name)
            pairs.append((event_type, name, now - min(within, HORIZON) if within is not None else now - HORIZON))
    if not pairs:
        return 0, None
    e, r = names(OutboxEvent), names(HandlerRun)
    postgres = connection.vendor == "postgresql"
    # Typed on PostgreSQL (a parameter in a SELECT list is text); SQLite compares the text.
    as_type = "CAST(%s AS text)" if postgres else "%s"
    as_time = f"CAST(%s AS {cast_type(OutboxEvent._meta.get_field('created_at'), connection)})" if postgres else "%s"
    wanted = " UNION ALL ".join([f"SELECT {as_type} AS type, {as_type} AS handler, {as_time} AS since"] * len(pairs))
    # Names come from the models' meta (creatorcommerce.sql.names); values are parameters.
    sql = (
        f"SELECT COUNT(*), MIN(recent.created_at) FROM "  # noqa: S608
        f"(SELECT {e.id} AS id, {e.type} AS type, {e.created_at} AS created_at FROM {e.table} "
        f"ORDER BY {e.id} DESC LIMIT %s) AS recent "
        f"JOIN ({wanted}) AS wanted ON wanted.type = recent.type AND recent.created_at >= wanted.since "
        f"WHERE NOT EXISTS (SELECT 1 FROM {r.table} AS run "
        f"WHERE run.{r.event_id} = recent.id AND run.{r.handler} = wanted.handler)"
    )
    params: list = [WINDOW]
    for event_type, name, since in pairs:
        params += [event_type, name, connection.ops.adapt_datetimefield_value(since)]
    with scrape_query() as cursor:
        cursor.execute(sql, params)
        count, oldest = cursor.fetchone()
    return int(count or 0), as_aware(oldest)


@scrape_collector("spine.outbox")
def outbox_backlog():
    now = timezone.now()
    count, oldest = handler_backlog(now)
    backlog, age = backlog_families()
    backlog.add_metric(["handlers"], count)
    age.add_metric(["handlers"], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    return [backlog, age]
