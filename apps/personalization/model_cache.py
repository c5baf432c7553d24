"""The per-process copy of every shop's co-purchase model (docs/personalization.md, "Serving").

A shop's model is loaded on its first use in a process (one query of its neighbours, a
few milliseconds for a catalog of hundreds of items; training never runs here) and kept.
Invalidation, as the fence cache does it (docs/geofences.md, "Fence cache"): training
(``services.model_train``) drops the trained shop's copy in its own process on commit and
bumps a generation number kept in Django's cache (Redis when configured); every process
reads that number at most once per ``PERSONALIZATION_CACHE_CHECK_MS`` (one GET) and drops
every copy when it changed, so the next use reloads the new version. Between checks a call
costs a clock read and a comparison: no query, no cache round trip. A shop without a model
is cached too (empty), so a shop that never sold asks the database nothing either.

If the generation key is lost (Redis flushed), the next bump recreates it from the clock in
nanoseconds, a value no process holds, so they all reload.
"""

from __future__ import annotations

import threading
import time as _time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache

GENERATION_KEY = "personalization:generation"


@dataclass(frozen=True)
class ShopModel:
    shop_id: int
    version: int  # 0: the shop has no trained model
    sku_of: dict[str, int] = field(default_factory=dict)  # code -> SKU id, items the model knows
    code_of: dict[int, str] = field(default_factory=dict)
    # SKU id -> {neighbour id: similarity}, and the neighbours best first (for suggestions;
    # inactive SKUs are left out of those).
    similar: dict[int, dict[int, float]] = field(default_factory=dict)
    ranked: dict[int, tuple[int, ...]] = field(default_factory=dict)


class _ModelCache:
    def __init__(self):
        self._lock = threading.Lock()
        self._models: dict[int, ShopModel] = {}
        self._generation = None
        self._checked_at = 0.0
        self.loads = 0  # how many shop models this process loaded (tests, docs)

    def get(self, shop_id: int) -> ShopModel:
        now = _time.monotonic()
        if now - self._checked_at >= settings.PERSONALIZATION_CACHE_CHECK_MS / 1000:
            self._check_generation(now)
        model = self._models.get(shop_id)
        if model is None:
            model = self._load(shop_id)
        return model

    def drop(self, shop_id: int | None = None) -> None:
        with self._lock:
            if shop_id is None:
                self._models = {}
            else:
                self._models.pop(shop_id, None)

    def _check_generation(self, now: float) -> None:
        self._checked_at = now
        generation = cache.get(GENERATION_KEY)
        if generation != self._generation:
            with self._lock:
                self._models = {}
                self._generation = generation

    def _load(self, shop_id: int) -> ShopModel:
        from apps.catalog.models import SKU

        from .models import ItemModel, Neighbour

        header = ItemModel.objects.filter(shop_id=shop_id).values_list("pk", "version").first()
        if header is None:
            model = ShopModel(shop_id=shop_id, version=0)
        else:
            rows = (
                Neighbour.objects.filter(model_id=header[0])
                .order_by("sku_id", "rank")
                .values_list("sku_id", "neighbour_id", "score", "neighbour__is_active")
            )
            similar: dict[int, dict[int, float]] = {}
            ranked: dict[int, list[int]] = {}
            for sku_id, other, score, active in rows:
                similar.setdefault(sku_id, {})[other] = score
                if active:
                    ranked.setdefault(sku_id, []).append(other)
            codes = dict(SKU.objects.filter(shop_id=shop_id, pk__in=similar.keys()).values_list("pk", "code"))
            model = ShopModel(
                shop_id=shop_id,
                version=header[1],
                sku_of={code: pk for pk, code in codes.items()},
                code_of=codes,
                similar=similar,
                ranked={sku: tuple(found) for sku, found in ranked.items()},
            )
        # Read after this process's last generation check: a training that commits after the
        # read bumps the generation past it, and the next check drops this copy.
        with self._lock:
            self._models[shop_id] = model
            self.loads += 1
        return model


model_cache = _ModelCache()


def bump_generation() -> None:
    """Tell every process its models are out of date (their next check drops them)."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # no key yet, or lost: a value no process holds
        if not cache.add(GENERATION_KEY, _time.time_ns(), timeout=None):
            cache.incr(GENERATION_KEY)


def invalidate_on_commit(shop_id: int) -> None:
    """Drop this process's copy of the shop's model and bump the generation, once the
    transaction commits."""
    from django.db import transaction

    def invalidate():
        model_cache.drop(shop_id)
        bump_generation()

    transaction.on_commit(invalidate)
