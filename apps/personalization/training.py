"""Item-to-item co-purchase similarity, computed in memory (docs/personalization.md, "The model").

Two items are similar when they are bought together: in the same order, and, with half the
weight, by the same buyer across orders. Every purchase weighs ``0.5 ** (age / half-life)``,
so what sells together now counts more than what sold together last season:

    C(a, b) = sum over orders holding a and b of d(order)
              + BUYER_WEIGHT * sum over buyers of a and b of min(d_u(a), d_u(b))
    N(a)    = sum over orders holding a of d(order) + BUYER_WEIGHT * sum over buyers of a of d_u(a)
    sim(a, b) = C(a, b) / sqrt(N(a) * N(b))            (cosine, in (0, 1])

where ``d_u(x)`` is the weight of the buyer's latest purchase of ``x``. Each item keeps its
``top_k`` neighbours, ties broken by the neighbour's id, so the same orders always give the
same model. Buyer ids are only grouping keys here; the result holds item pairs only.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import combinations

# Same-buyer, different-order pairs count half as much as same-order pairs.
BUYER_WEIGHT = 0.5
# An order (or a buyer's history) with more distinct items than this contributes its most
# recent ones only: a wholesale basket must not make every item everyone's neighbour.
MAX_ITEMS_PER_GROUP = 50


@dataclass
class Trained:
    neighbours: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    orders: int = 0
    buyers: int = 0


def decay(at: datetime, now: datetime, half_life_days: float) -> float:
    age_days = max(0.0, (now - at).total_seconds() / 86400)
    return 0.5 ** (age_days / half_life_days)


def co_purchase(
    rows: Iterable[tuple[int, int, int, datetime]], *, now: datetime, half_life_days: float, top_k: int
) -> Trained:
    """``rows``: (order id, buyer id, SKU id, order time) per order line."""
    orders: dict[int, tuple[float, set[int]]] = {}
    latest: dict[int, dict[int, float]] = defaultdict(dict)  # buyer -> sku -> weight of the latest buy
    for order_id, buyer_id, sku_id, at in rows:
        weight = decay(at, now, half_life_days)
        orders.setdefault(order_id, (weight, set()))[1].add(sku_id)
        mine = latest[buyer_id]
        if weight > mine.get(sku_id, 0.0):
            mine[sku_id] = weight

    pair: dict[tuple[int, int], float] = defaultdict(float)
    norm: dict[int, float] = defaultdict(float)
    for weight, skus in orders.values():
        items = sorted(skus)[:MAX_ITEMS_PER_GROUP]
        for sku in items:
            norm[sku] += weight
        for a, b in combinations(items, 2):
            pair[a, b] += weight
    for mine in latest.values():
        items = sorted(mine, key=lambda s: (-mine[s], s))[:MAX_ITEMS_PER_GROUP]
        for sku in items:
            norm[sku] += BUYER_WEIGHT * mine[sku]
        for a, b in combinations(sorted(items), 2):
            pair[a, b] += BUYER_WEIGHT * min(mine[a], mine[b])

    candidates: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for (a, b), together in pair.items():
        if together <= 0:
            continue
        score = together / math.sqrt(norm[a] * norm[b])
        candidates[a].append((b, score))
        candidates[b].append((a, score))
    neighbours = {sku: sorted(found, key=lambda n: (-n[1], n[0]))[:top_k] for sku, found in sorted(candidates.items())}
    return Trained(neighbours=neighbours, orders=len(orders), buyers=len(latest))
