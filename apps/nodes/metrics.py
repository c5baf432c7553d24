"""An edge's relay backlog, read at scrape time (docs/operations.md, "Metrics"): the events
its outbox holds that the cloud has not acknowledged (stamped beyond the acknowledged
sequence, and those still waiting for a stamp), and how old the oldest of them is. One
statement of index lookups (the sequence's unique index, the unstamped events' partial
index). Nothing on a cloud node.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from creatorcommerce.metrics import as_aware, scrape_collector, scrape_query
from creatorcommerce.spine.metrics import backlog_families
from creatorcommerce.spine.models import OutboxEvent
from creatorcommerce.sql import names

from .models import RelayState


def relay_backlog() -> tuple[int, object]:
    """(events not acknowledged by the cloud, the oldest one's time or None)."""
    e, s = names(OutboxEvent), names(RelayState)
    # Names come from the models' meta (creatorcommerce.sql.names); the node id is a parameter.
    sql = (
        f"SELECT head.last_seq, head.unstamped, head.acked, "  # noqa: S608
        f"COALESCE((SELECT {e.created_at} FROM {e.table} WHERE {e.seq} = head.acked + 1), "
        f"(SELECT {e.created_at} FROM {e.table} WHERE {e.seq} IS NULL ORDER BY {e.id} LIMIT 1)) "
        f"FROM (SELECT "
        f"COALESCE((SELECT MAX({e.seq}) FROM {e.table} WHERE {e.seq} IS NOT NULL), 0) AS last_seq, "
        f"(SELECT COUNT(*) FROM {e.table} WHERE {e.seq} IS NULL) AS unstamped, "
        f"COALESCE((SELECT {s.acked_seq} FROM {s.table} WHERE {s.node} = %s), 0) AS acked) AS head"
    )
    with scrape_query() as cursor:
        cursor.execute(sql, [settings.NODE_ID])
        last_seq, unstamped, acked, oldest = cursor.fetchone()
    waiting = max(0, int(last_seq) - int(acked)) + int(unstamped)
    return waiting, as_aware(oldest) if waiting else None


@scrape_collector("nodes.relay")
def relay_metrics():
    if settings.NODE_ROLE != "edge":
        return []
    now = timezone.now()
    waiting, oldest = relay_backlog()
    backlog, age = backlog_families()
    backlog.add_metric(["relay"], waiting)
    age.add_metric(["relay"], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    return [backlog, age]
