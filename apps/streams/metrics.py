"""Viewers per live stream, read at scrape time (docs/operations.md, "Metrics").

The count every web process keeps of its viewer sockets, added up across processes as the
stream's page shows it (``presence_count``: Redis, or this process alone without Redis). One
series per live stream, at most ``MAX_STREAMS`` (the newest), so a scrape stays cheap and
the series end with the drop.
"""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from creatorcommerce.metrics import scrape_collector, scrape_query

from .models import Stream
from .services import presence_count

MAX_STREAMS = 100


@scrape_collector("streams.viewers")
def stream_viewers():
    family = GaugeMetricFamily(
        "cc_stream_viewers",
        f"Connected viewer WebSockets of each live stream, all processes together (at most {MAX_STREAMS} streams).",
        labels=["stream"],
    )
    with scrape_query():
        live = list(
            Stream.objects.filter(status=Stream.Status.LIVE).order_by("-pk").values_list("pk", flat=True)[:MAX_STREAMS]
        )
    for stream_id in live:
        family.add_metric([str(stream_id)], presence_count(stream_id=stream_id))
    return [family]
