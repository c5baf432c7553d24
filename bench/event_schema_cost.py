"""What checking an event against its declared schema costs per emit (SPINE_CHECK_EVENTS).

    .venv/bin/python bench/event_schema_cost.py

For a few real event shapes: ``check()`` alone, and building the outbox row (what ``emit()``
does before its INSERT: JSON round trip, groups, check) with checking off and on. Best of
5 runs of 20,000 calls each, in microseconds per event. Needs no database. Never asserts.
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

from django.conf import settings  # noqa: E402

from creatorcommerce.spine.event_schema import check  # noqa: E402
from creatorcommerce.spine.events import _outbox_row  # noqa: E402

DEAL = {
    "id": 7,
    "price": "12.00",
    "ends_at": "2026-01-01T20:00:00Z",
    "per_buyer_limit": 2,
    "remaining": 3,
    "version": 4,
}
PIN = {
    "sku": "MUG",
    "sku_id": 5,
    "title": "Mug",
    "image_url": "",
    "price": "20.00",
    "currency": "USD",
    "per_buyer_limit": None,
    "available": 3,
    "level": 9,
    "version": 8,
    "deal": DEAL,
}
EVENTS = [
    ("stock.changed", {"sku": "MUG", "sku_id": 5, "shop": 2, "level": 9, "available": 3, "version": 8}),
    (
        "order.placed",
        {
            "order": 1,
            "shop": 2,
            "stream": 3,
            "buyer": 4,
            "buyer_name": "Ada",
            "total": "24.00",
            "currency": "USD",
            "lines": [{"sku": "MUG", "sku_id": 5, "quantity": 2, "deal": 7}],
        },
    ),
    (
        "deal.changed",
        {"stream": 3, "sku": "MUG", "sku_id": 5, "deal_id": 7, "version": 4, "remaining": 3, "deal": DEAL},
    ),
    ("pins.changed", {"stream": 3, "pins": [PIN] * 10}),
]
N = 20_000


def per_call(fn) -> float:
    return min(timeit.repeat(fn, number=N, repeat=5)) / N * 1e6


def main() -> None:
    print(f"{'event':16s} {'check':>8s} {'row, off':>9s} {'row, on':>9s}  (microseconds per event)")
    for event_type, payload in EVENTS:
        checked = per_call(lambda t=event_type, p=payload: check(t, p))
        settings.SPINE_CHECK_EVENTS = False
        off = per_call(lambda t=event_type, p=payload: _outbox_row(t, p, ["sku.5"]))
        settings.SPINE_CHECK_EVENTS = True
        on = per_call(lambda t=event_type, p=payload: _outbox_row(t, p, ["sku.5"]))
        print(f"{event_type:16s} {checked:8.1f} {off:9.1f} {on:9.1f}")


if __name__ == "__main__":
    main()
