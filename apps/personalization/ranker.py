"""What callers use (docs/personalization.md, "Serving"): a viewer's pins ranked from their
own history, and bundle suggestions. Served from this process's copy of the shop's model
(``model_cache``); the only database read is the viewer's history, one statement on the
orders' buyer index, and only for a signed-in viewer in a shop whose model knows something.

Both answer the creator's order (or nothing) rather than fail: unknown shops, SKU codes the
model does not know, anything that is not a code, an empty list.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from django.conf import settings

from .model_cache import ShopModel, model_cache
from .selectors import viewer_history

# How much a viewer's history moves a bundle suggestion away from the anchor's own neighbours.
PERSONAL_WEIGHT = 0.5


def _as_id(value) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    pk = getattr(value, "pk", None)  # a User (anonymous users have none)
    return pk if isinstance(pk, int) and pk > 0 else None


def _history(model: ShopModel, user_id: int) -> dict[int, float]:
    """The viewer's bought items the model knows, each weighed by how recently they bought it."""
    now = time.time()
    half_life = settings.PERSONALIZATION_HALF_LIFE_DAYS * 86400
    return {
        sku: 0.5 ** (max(0.0, now - at.timestamp()) / half_life)
        for sku, at in viewer_history(shop_id=model.shop_id, user_id=user_id)
        if sku in model.similar
    }


def _affinity(model: ShopModel, history: dict[int, float], sku: int) -> float:
    return sum(weight * model.similar[bought].get(sku, 0.0) for bought, weight in history.items())


def rank_pins(shop_id: int, viewer, sku_codes: Iterable[str]) -> list[str]:
    """``sku_codes`` (the creator's pin order) reordered for ``viewer`` (a user id, a User,
    or None): pins similar to what the viewer bought in this shop first, most similar
    first; every tie, and every pin the history says nothing about, in the creator's order.
    An anonymous viewer, a viewer with no history here, or a shop without a model gets the
    creator's order exactly. Always a permutation of the input (duplicates and unknown codes
    kept where the creator's order puts them)."""
    codes = list(sku_codes or ())
    shop = _as_id(shop_id)
    user = _as_id(viewer)
    if len(codes) < 2 or shop is None or user is None:
        return codes
    model = model_cache.get(shop)
    if not model.similar:
        return codes
    history = _history(model, user)
    return ranked(model, history, codes) if history else codes


def ranked(model: ShopModel, history: dict[int, float], codes: list) -> list:
    """The in-memory half of ``rank_pins``: ``codes`` by affinity to ``history``, ties in order."""
    scored = []
    for index, code in enumerate(codes):
        sku = model.sku_of.get(code) if isinstance(code, str) else None
        scored.append((-_affinity(model, history, sku) if sku is not None else 0.0, index, code))
    scored.sort(key=lambda s: (s[0], s[1]))
    return [code for _, _, code in scored]


def suggest_bundle(shop_id: int, viewer, sku_code: str, k: int = 3) -> list[str]:
    """Up to ``k`` active SKU codes to offer with ``sku_code``: its nearest co-purchased
    items, nudged towards what ``viewer`` bought before (``PERSONAL_WEIGHT``); ties in the
    model's order. Empty for an unknown code, k < 1, or a shop without a model."""
    shop = _as_id(shop_id)
    if shop is None or not isinstance(sku_code, str) or not isinstance(k, int) or k < 1:
        return []
    model = model_cache.get(shop)
    anchor = model.sku_of.get(sku_code)
    if anchor is None:
        return []
    candidates: Sequence[int] = model.ranked.get(anchor, ())
    if not candidates:
        return []
    user = _as_id(viewer)
    history = _history(model, user) if user is not None else {}
    total = sum(history.values())
    scored = []
    for rank, sku in enumerate(candidates):
        score = model.similar[anchor][sku]
        if total:
            score += PERSONAL_WEIGHT * _affinity(model, history, sku) / total
        scored.append((-score, rank, sku))
    scored.sort(key=lambda s: (s[0], s[1]))
    return [model.code_of[sku] for _, _, sku in scored[:k]]
