"""Who gets which variant (docs/experiments.md, "Assignment").

A viewer is ``u:<user id>`` when signed in, else ``s:`` and a SHA-256 digest of the
anonymous session key (the key itself is never stored). Their bucket is GrowthBook's
documented hash, version 2, of the experiment's seed and that viewer key: a number in
[0, 1); GrowthBook's bucket ranges turn it into a variant given the weights and the ramp's
coverage (``growthbook.core``: ``gbhash``, ``getBucketRanges``, ``chooseVariation``; the
same functions GrowthBook's SDKs and their shared test cases define). A viewer outside the
coverage is not in the experiment and gets ``control``. Raising the coverage never moves a
viewer who was in: each variant's range grows from its own start.

Sticky: the first exposure a client reports records the variant (``Assignment``); from then
on, while the experiment runs, the record wins over the hash, so a lower ramp or new weights
never take a variant away from someone who has seen it.

The hot path (every viewer socket's snapshot) reads the running experiments from a
per-process copy refreshed at most every ``EXPERIMENTS_REFRESH_SECONDS`` and dropped at once
when this process commits a change or hears one on a stream (``forget_running``): without a
running experiment a snapshot costs a clock read and two dict look-ups.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from growthbook.core import chooseVariation, gbhash, getBucketRanges

from .slots import CONTROL, SLOTS, STREAM

HASH_VERSION = 2


def viewer_key(*, user_id: int | None, session_key: str | None) -> str | None:
    if user_id:
        return f"u:{int(user_id)}"
    if session_key:
        return "s:" + hashlib.sha256(session_key.encode()).hexdigest()[:40]
    return None


def stream_key(stream_id: int) -> str:
    """The assignment unit of a stream-level slot (docs/experiments.md, "Stream-level
    slots"): hashed, recorded and converted as a viewer key is."""
    return f"stream:{int(stream_id)}"


def bucket(seed: str, viewer: str) -> float:
    """GrowthBook's hash (v2) of ``seed`` and ``viewer``, in [0, 1)."""
    return gbhash(seed, viewer, HASH_VERSION)


def choose(n: float, *, weights: list[float], coverage: float) -> int:
    """The variant index for bucket ``n``, or -1 when outside the coverage."""
    return chooseVariation(n, getBucketRanges(len(weights), coverage, weights))


@dataclass(frozen=True)
class Spec:
    """What the hot path needs of a running experiment."""

    id: int
    shop_id: int | None
    slot: str
    seed: str
    keys: tuple[str, ...]
    weights: tuple[float, ...]
    ramp_at: tuple[float, ...]  # epoch seconds, ascending
    ramp_percent: tuple[float, ...]

    def coverage(self, now: float) -> float:
        i = bisect.bisect_right(self.ramp_at, now) - 1
        return self.ramp_percent[i] / 100 if i >= 0 else 0.0

    def hashed(self, viewer: str, now: float) -> str | None:
        """The variant the hash gives ``viewer`` now, or None (outside the ramp)."""
        i = choose(bucket(self.seed, viewer), weights=list(self.weights), coverage=self.coverage(now))
        return self.keys[i] if i >= 0 else None


def ramp_steps(ramp: list[dict]) -> list[tuple[datetime, float]]:
    return [(parse_datetime(step["at"]), float(step["percent"])) for step in ramp]


def spec_of(experiment) -> Spec:
    steps = ramp_steps(experiment.ramp)
    return Spec(
        id=experiment.pk,
        shop_id=experiment.shop_id,
        slot=experiment.slot,
        seed=experiment.seed,
        keys=tuple(v["key"] for v in experiment.variants),
        weights=tuple(float(v["weight"]) for v in experiment.variants),
        ramp_at=tuple(at.timestamp() for at, _ in steps),
        ramp_percent=tuple(p for _, p in steps),
    )


class _Running:
    """The running experiments by shop (None: platform-wide), per process."""

    def __init__(self):
        self.lock = threading.Lock()
        self.expires = 0.0
        self.by_shop: dict[int | None, list[Spec]] = {}
        self.generation = 0

    def get(self) -> dict[int | None, list[Spec]]:
        if time.monotonic() < self.expires:
            return self.by_shop
        return self._load()

    def _load(self) -> dict[int | None, list[Spec]]:
        from .models import Experiment

        with self.lock:
            generation = self.generation
            by_shop: dict[int | None, list[Spec]] = {}
            for experiment in Experiment.objects.filter(status=Experiment.Status.RUNNING).order_by("pk"):
                by_shop.setdefault(experiment.shop_id, []).append(spec_of(experiment))
            if generation == self.generation:  # not forgotten while loading
                self.by_shop = by_shop
                self.expires = time.monotonic() + settings.EXPERIMENTS_REFRESH_SECONDS
            return by_shop

    def forget(self) -> None:
        self.generation += 1
        self.expires = 0.0


_running = _Running()


def running_specs(shop_id: int) -> list[Spec]:
    """The running experiments a viewer of ``shop_id``'s streams is in scope of."""
    by_shop = _running.get()
    if not by_shop:
        return []
    return by_shop.get(shop_id, []) + by_shop.get(None, [])


def stream_spec(slot: str, shop_id: int) -> Spec | None:
    """The running experiment on ``slot`` for ``shop_id``'s streams (the shop's own before a
    platform-wide one), or None; from this process's copy, no query while it is fresh."""
    return next((spec for spec in running_specs(shop_id) if spec.slot == slot), None)


def may_be_running() -> bool:
    """False only when this process's copy is fresh and holds no running experiment: a
    check in memory, for the spine's ``wants`` on the buy's committing thread."""
    return time.monotonic() >= _running.expires or bool(_running.by_shop)


def forget_running() -> None:
    """Drop this process's copy (a change committed here, or heard on a stream)."""
    _running.forget()


def experience_for(*, shop_id: int, user_id: int | None, session_key: str | None, now: float | None = None):
    """``({slot: variant}, {slot: spec})`` for a viewer of a ``shop_id`` stream: every
    running slot, ``control`` outside the ramp. ({}, {}) without a running experiment."""
    # A stream-level slot is no viewer's to render: the stream as a whole has its variant
    # (docs/experiments.md, "Stream-level slots").
    specs = [spec for spec in running_specs(shop_id) if SLOTS[spec.slot].unit != STREAM]
    if not specs:
        return {}, {}
    from .models import Assignment

    key = viewer_key(user_id=user_id, session_key=session_key)
    now = time.time() if now is None else now
    sticky = (
        dict(
            Assignment.objects.filter(experiment_id__in=[s.id for s in specs], viewer=key).values_list(
                "experiment_id", "variant"
            )
        )
        if key
        else {}
    )
    experience, by_slot = {}, {}
    for spec in specs:
        if spec.slot in experience:
            continue  # one experiment per slot runs at a time; the shop's comes first
        variant = sticky.get(spec.id) or (spec.hashed(key, now) if key else None) or CONTROL
        experience[spec.slot] = variant
        by_slot[spec.slot] = spec
    return experience, by_slot


def now_ts() -> float:
    return timezone.now().timestamp()
