"""Device cues by status in /metrics (apps/devices/metrics.py): read at scrape time from
the cue log, moving with each cue's life (queued, sent, failed) through the services."""

from __future__ import annotations

import pytest

from apps.devices.models import Cue
from apps.devices.services import cue_fail, cue_fire, cue_mark_sent
from tests.helpers import scrape

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_cues_by_status_follow_each_cue(client, led):
    from creatorcommerce.celery import app

    app.conf.task_always_eager = False  # the cues wait in the broker's queue: no worker here
    app.control.purge()
    try:
        before = scrape(client)
        first, second = cue_fire(device=led, kind="pulse"), cue_fire(device=led, kind="pulse")
        figures = scrape(client)

        def delta(status):
            return figures.value("cc_device_cues", status=status) - before.value("cc_device_cues", status=status)

        assert {s: delta(s) for s in ("queued", "sent", "acked", "failed")} == {
            "queued": 2,
            "sent": 0,
            "acked": 0,
            "failed": 0,
        }
        cue = Cue.objects.select_related("device__room").get(pk=first.pk)
        assert cue_mark_sent(cue=cue)
        assert cue_fail(cue_id=second.pk, detail="test", statuses=(Cue.Status.QUEUED,))
        figures = scrape(client)
        assert {s: delta(s) for s in ("queued", "sent", "acked", "failed")} == {
            "queued": 0,
            "sent": 1,
            "acked": 0,
            "failed": 1,
        }
        assert figures.value("cc_metrics_collector_up", collector="devices.cues") == 1
    finally:
        app.control.purge()
