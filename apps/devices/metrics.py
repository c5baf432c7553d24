"""Device cues by status, read at scrape time (docs/operations.md, "Metrics").

One query on the (status, expires_at) index: the cues whose expiry is at most ``WINDOW``
ago, so queued and sent cues (in flight: their expiry is ahead, or just passed before the
sweep fails them) are all counted, and acked and failed ones over the last hour; the cost
does not grow with the cue log's history.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from creatorcommerce.metrics import scrape_collector, scrape_query

from .models import Cue

WINDOW = timedelta(hours=1)


@scrape_collector("devices.cues")
def cues_by_status():
    statuses = [choice.value for choice in Cue.Status]
    with scrape_query():
        counts = dict(
            Cue.objects.filter(status__in=statuses, expires_at__gte=timezone.now() - WINDOW)
            .values_list("status")
            .annotate(n=Count("id"))
            .order_by()
        )
    family = GaugeMetricFamily(
        "cc_device_cues",
        "MQTT device cues by status (queued, sent, acked, failed) whose expiry is at most an hour ago.",
        labels=["status"],
    )
    for status in statuses:
        family.add_metric([status], counts.get(status, 0))
    return [family]
