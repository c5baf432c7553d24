"""What ranking costs per call with the model loaded (docs/personalization.md, "Cost"): 20
pins, a viewer with 10 past orders in a shop of 30 SKUs and 200 orders. Run with ``-s`` to
see the figures; the bound asserted is loose (a shared CI machine), the doc has the numbers."""

from __future__ import annotations

import random
import time

import pytest

from apps.personalization.model_cache import model_cache
from apps.personalization.ranker import _history, rank_pins, ranked, suggest_bundle
from apps.personalization.selectors import viewer_history
from apps.personalization.services import model_train
from tests.factories import make_buyer, make_sku
from tests.personalization.conftest import buy

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

CALLS = 2000


def _per_call_us(fn) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(CALLS):
        fn()
    return (time.perf_counter() - started) / CALLS * 1e6


def test_ranking_20_pins_for_a_viewer_with_10_orders_costs_well_under_a_millisecond(shop):
    rng = random.Random(21)
    codes = [f"P{n:02d}" for n in range(30)]
    for code in codes:
        make_sku(shop, code=code, price="5.00", stock=10_000)
    buyers = [make_buyer() for _ in range(40)]
    for n in range(200):
        buy(rng.choice(buyers), shop, *rng.sample(codes, rng.randint(1, 4)), days_ago=n % 90)
    viewer = make_buyer()
    for n in range(10):
        buy(viewer, shop, *rng.sample(codes, rng.randint(1, 3)), days_ago=n * 5)
    model = model_train(shop=shop)
    pins = codes[:20]
    first = rank_pins(shop.pk, viewer.pk, pins)
    assert sorted(first) == sorted(pins) and first != pins
    loads = model_cache.loads

    viewer_us = _per_call_us(lambda: rank_pins(shop.pk, viewer.pk, pins))
    anonymous_us = _per_call_us(lambda: rank_pins(shop.pk, None, pins))
    bundle_us = _per_call_us(lambda: suggest_bundle(shop.pk, viewer.pk, "P00", 3))
    history_us = _per_call_us(lambda: viewer_history(shop_id=shop.pk, user_id=viewer.pk))
    loaded, history = model_cache.get(shop.pk), _history(model_cache.get(shop.pk), viewer.pk)
    memory_us = _per_call_us(lambda: ranked(loaded, history, pins))
    assert model_cache.loads == loads  # served from memory all along
    print(
        f"\nmodel: {model.items} items, {model.pairs} neighbours from {model.orders} orders; per call: "
        f"rank_pins signed-in {viewer_us:.0f} us, anonymous {anonymous_us:.1f} us, "
        f"suggest_bundle signed-in {bundle_us:.0f} us; the history query alone {history_us:.0f} us, "
        f"the ranking in memory {memory_us:.0f} us "
        f"({len(history)} items in the history)"
    )
    assert viewer_us < 5000 and anonymous_us < 100
