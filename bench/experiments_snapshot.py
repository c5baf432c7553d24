"""What the experiments cost a viewer's snapshot (docs/experiments.md, "Cost on the hot path").

    DATABASE_URL=postgres://... .venv/bin/python bench/experiments_snapshot.py

A shop with a live stream and two pinned SKUs, made inside a transaction that is rolled back
at the end. Per call, best of 5 runs of 300 calls, in microseconds:

- ``stream_snapshot`` alone: what a viewer socket read before snapshot extras existed;
- the viewer socket's read now (``ViewerConsumer._read``: the snapshot and every registered
  snapshot extra) with no running experiment;
- the extras alone with no running experiment, and with one running on the shop (a viewer
  without an assignment: one indexed query for sticky records, then the hash).

Never asserts; needs a migrated database.
"""

from __future__ import annotations

import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorcommerce.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")

import django

django.setup()

from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.experiments.assignment import forget_running  # noqa: E402
from apps.experiments.services import experiment_create, experiment_transition  # noqa: E402
from apps.streams.consumers import ViewerConsumer  # noqa: E402
from apps.streams.extras import Viewer, snapshot_extras  # noqa: E402
from apps.streams.models import Stream  # noqa: E402
from apps.streams.selectors import stream_snapshot  # noqa: E402
from apps.streams.services import pin_add, stream_start  # noqa: E402
from apps.streams.tokens import ViewerClaims  # noqa: E402

N, RUNS = 300, 5


def per_call(fn) -> float:
    return min(timeit.repeat(fn, number=N, repeat=RUNS)) / N * 1e6


class Rollback(Exception):
    pass


def main() -> None:
    from tests.factories import CreatorFactory, make_sku

    try:
        with transaction.atomic():
            creator = CreatorFactory()
            stream = Stream.objects.create(shop=creator.shop, title="Bench", starts_at=timezone.now())
            stream_start(stream=stream)
            for i in range(2):
                pin_add(stream=stream, sku=make_sku(creator.shop, code=f"BENCH-{i}", stock=50))
            consumer = ViewerConsumer()
            consumer.stream_id = stream.pk
            claims = ViewerClaims(stream_id=stream.pk, user_id=None, session_key="bench-session", origin=None)
            viewer = Viewer(stream_id=stream.pk, shop_id=creator.shop.pk, user_id=None, session_key="bench-session")
            forget_running()
            rows = {
                "stream_snapshot alone (before)": per_call(lambda: stream_snapshot(stream_id=stream.pk)),
                "viewer read now, no experiment": per_call(lambda: consumer._read(claims)),
                "extras alone, no experiment": per_call(lambda: snapshot_extras(viewer)),
            }
            experiment = experiment_create(
                actor=creator,
                shop=creator.shop,
                name="bench",
                slot="purchase_confirmation",
                variants=[{"key": "control", "weight": 0.5}, {"key": "confetti", "weight": 0.5}],
                ramp=[{"at": "2026-01-01T00:00:00Z", "percent": 100}],
            )
            experiment_transition(experiment=experiment, verb="start", actor=creator)
            forget_running()
            rows["extras alone, one running experiment"] = per_call(lambda: snapshot_extras(viewer))
            rows["viewer read now, one running experiment"] = per_call(lambda: consumer._read(claims))
            for name, us in rows.items():
                print(f"{name:45s} {us:9.1f} us")
            raise Rollback
    except Rollback:
        pass


if __name__ == "__main__":
    main()
