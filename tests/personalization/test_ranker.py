"""Serving (docs/personalization.md, "Serving"): a viewer's pins ranked from their own
history, from this process's copy of the model; the creator's order for everyone the model
has nothing to say about; the copy reloaded after a retrain without a restart."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.personalization.model_cache import _ModelCache, model_cache
from apps.personalization.ranker import rank_pins, suggest_bundle
from apps.personalization.services import model_train
from tests.factories import make_buyer
from tests.personalization.conftest import buy

pytestmark = [pytest.mark.django_db]

CREATOR_ORDER = ["A", "B", "C", "D", "E"]


@pytest.fixture
def trained(shop, buyers):
    """B is often bought with A, C sometimes; D and E go together."""
    for buyer in buyers[:4]:
        buy(buyer, shop, "A", "B")
    buy(buyers[4], shop, "A", "C")
    buy(buyers[5], shop, "D", "E")
    model_train(shop=shop)
    return shop


def test_a_viewer_who_bought_a_gets_b_first(trained):
    viewer = make_buyer()
    buy(viewer, trained, "A", days_ago=2)
    pins = ["E", "D", "C", "B", "A"]
    assert rank_pins(trained.pk, viewer.pk, pins) == ["B", "C", "E", "D", "A"]
    assert rank_pins(trained.pk, viewer, pins) == ["B", "C", "E", "D", "A"]  # a User works as well
    viewer_of_d = make_buyer()
    buy(viewer_of_d, trained, "D")
    assert rank_pins(trained.pk, viewer_of_d.pk, CREATOR_ORDER) == ["E", "A", "B", "C", "D"]


def test_anonymous_viewers_and_viewers_without_history_keep_the_creators_order_exactly(trained, buyers):
    pins = ["C", "A", "E", "B", "D"]
    assert rank_pins(trained.pk, None, pins) == pins
    newcomer = make_buyer()
    assert rank_pins(trained.pk, newcomer.pk, pins) == pins
    # A shop with no model (here: none at all) says nothing about anyone.
    assert rank_pins(trained.pk + 10_000, buyers[0].pk, pins) == pins
    # A viewer whose items have no neighbours among the pins: ties all round, creator's order.
    assert rank_pins(trained.pk, buyers[5].pk, ["A", "B", "C"]) == ["A", "B", "C"]


def test_retraining_after_new_orders_changes_the_ranking_and_reloads_the_copy(
    trained, buyers, settings, django_capture_on_commit_callbacks
):
    viewer = make_buyer()
    buy(viewer, trained, "C")
    assert rank_pins(trained.pk, viewer.pk, ["A", "D", "E"]) == ["A", "D", "E"]  # C's neighbour is A
    loads = model_cache.loads
    for buyer in buyers[:6]:
        buy(buyer, trained, "C", "E")  # C now sells with E
    with django_capture_on_commit_callbacks(execute=True):
        model_train(shop=trained)
    assert rank_pins(trained.pk, viewer.pk, ["A", "D", "E"]) == ["E", "A", "D"]
    assert model_cache.loads == loads + 1  # the trained shop's copy was dropped and reloaded once


def test_another_processs_copy_reloads_on_the_generation_check(
    trained, buyers, settings, django_capture_on_commit_callbacks
):
    """A second cache stands for another web process: the retrain here bumps the generation
    number in the cache; the other one drops its copy at its next check, no restart."""
    settings.PERSONALIZATION_CACHE_CHECK_MS = 200
    other = _ModelCache()
    version = other.get(trained.pk).version
    for buyer in buyers[:3]:
        buy(buyer, trained, "C", "D")
    with django_capture_on_commit_callbacks(execute=True):
        model_train(shop=trained)
    deadline = time.monotonic() + 5
    while other.get(trained.pk).version == version:
        assert time.monotonic() < deadline, "the other copy was never reloaded"
        time.sleep(0.02)
    assert other.get(trained.pk).version == version + 1 and other.loads == 2


def test_the_hot_path_reads_only_the_viewers_history_once_the_model_is_loaded(trained, buyers):
    viewer = make_buyer()
    buy(viewer, trained, "A")
    rank_pins(trained.pk, viewer.pk, CREATOR_ORDER)  # loads the model
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert rank_pins(trained.pk, viewer.pk, CREATOR_ORDER)[0] == "B"
    assert len(queries) == 5  # one per call: the history
    assert not any("personalization_" in q["sql"] for q in queries.captured_queries)
    with CaptureQueriesContext(connection) as queries:
        assert rank_pins(trained.pk, None, CREATOR_ORDER) == CREATOR_ORDER
        assert suggest_bundle(trained.pk, None, "A", 2) == ["B", "C"]
    assert len(queries) == 0


def test_a_shop_without_a_model_is_cached_as_empty_and_asks_nothing(shop, buyers):
    buy(buyers[0], shop, "A", "B")  # sold, but never trained
    assert rank_pins(shop.pk, buyers[0].pk, ["B", "A"]) == ["B", "A"]
    with CaptureQueriesContext(connection) as queries:
        assert rank_pins(shop.pk, buyers[0].pk, ["B", "A"]) == ["B", "A"]
        assert suggest_bundle(shop.pk, buyers[0].pk, "A") == []
    assert len(queries) == 0


def test_bad_input_is_answered_not_raised(trained, buyers):
    viewer = buyers[0]  # bought A and B
    assert rank_pins(trained.pk, viewer.pk, []) == []
    assert rank_pins(trained.pk, viewer.pk, ["C"]) == ["C"]
    # Unknown codes, non-codes and duplicates keep their places in the creator's order.
    assert rank_pins(trained.pk, viewer.pk, ["NOPE", "D", None, "C", "D", 7]) == ["C", "NOPE", "D", None, "D", 7]
    assert rank_pins(trained.pk, viewer.pk, ("D", "C")) == ["C", "D"]  # any iterable
    assert rank_pins(None, viewer.pk, ["D", "C"]) == ["D", "C"]
    assert rank_pins("shop", viewer.pk, ["D", "C"]) == ["D", "C"]
    assert rank_pins(trained.pk, -1, ["D", "C"]) == ["D", "C"]
    assert rank_pins(trained.pk, True, ["D", "C"]) == ["D", "C"]
    assert rank_pins(trained.pk, viewer.pk, None) == []
    for sku_code, k in (("NOPE", 3), ("A", 0), ("A", -1), (None, 3), ("A", "3")):
        assert suggest_bundle(trained.pk, viewer.pk, sku_code, k) == []


def test_bundle_suggestions_are_the_nearest_items_nudged_by_the_viewers_history(trained, buyers):
    assert suggest_bundle(trained.pk, None, "A", 3) == ["B", "C"]
    assert suggest_bundle(trained.pk, None, "A", 1) == ["B"]
    assert suggest_bundle(trained.pk, None, "D") == ["E"]
    # Inactive SKUs are not offered.
    from apps.catalog.models import SKU

    SKU.objects.filter(shop=trained, code="B").update(is_active=False)
    model_cache.drop()
    assert suggest_bundle(trained.pk, None, "A", 3) == ["C"]


def test_a_viewers_history_nudges_a_close_bundle_call(shop, buyers):
    # A sells with B and with C alike; C also sells with D.
    buy(buyers[0], shop, "A", "B")
    buy(buyers[1], shop, "A", "C")
    buy(buyers[2], shop, "C", "D")
    buy(buyers[3], shop, "B", "E")
    model_train(shop=shop)
    assert sorted(suggest_bundle(shop.pk, None, "A", 2)) == ["B", "C"]  # a close call (decay only)
    fan_of_d, fan_of_e = make_buyer(), make_buyer()
    buy(fan_of_d, shop, "D")
    buy(fan_of_e, shop, "E")
    assert suggest_bundle(shop.pk, fan_of_d.pk, "A", 2) == ["C", "B"]
    assert suggest_bundle(shop.pk, fan_of_e.pk, "A", 2) == ["B", "C"]


def test_the_history_statement_is_built_from_the_models_with_values_as_parameters(trained, buyers):
    """As the buy path's statements are (tests/ops/test_hot_sql.py): a renamed column fails
    here, and no status is embedded."""
    from apps.orders.models import Order, OrderLine
    from apps.personalization.selectors import history_sql, viewer_history
    from tests.ops.test_hot_sql import assert_from_models

    assert_from_models(history_sql(), Order, OrderLine)
    skus = dict(trained.skus.values_list("code", "pk"))
    assert sorted(sku for sku, _ in viewer_history(shop_id=trained.pk, user_id=buyers[0].pk)) == sorted(
        [skus["A"], skus["B"]]
    )
    assert viewer_history(shop_id=trained.pk, user_id=buyers[7].pk) == []
