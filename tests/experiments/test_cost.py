"""The hot path (docs/experiments.md, "Cost on the hot path"): without a running experiment
a viewer's snapshot extras read nothing from the database once the process's copy of the
running experiments is fresh; with one, a single query for the viewer's sticky records.
Control gets exactly the standard experience: nothing but ``"control"``."""

from __future__ import annotations

import pytest

from apps.experiments.assignment import forget_running
from apps.streams.extras import Viewer, snapshot_extras

pytestmark = pytest.mark.django_db


def test_no_query_without_a_running_experiment(stream_setup, django_assert_num_queries):
    viewer = Viewer(stream_id=stream_setup["stream"].pk, shop_id=stream_setup["shop"].pk, user_id=7, session_key=None)
    forget_running()
    with django_assert_num_queries(1):  # the process's copy, at most once a refresh interval
        assert snapshot_extras(viewer) == {"experience": {}}
    with django_assert_num_queries(0):
        for _ in range(100):
            assert snapshot_extras(viewer) == {"experience": {}}


def test_one_query_with_a_running_experiment_and_control_is_only_control(
    stream_setup, make_experiment, django_assert_num_queries
):
    make_experiment(
        stream_setup["creator"], variants=[{"key": "control", "weight": 1.0}, {"key": "confetti", "weight": 0}]
    )
    viewer = Viewer(stream_id=stream_setup["stream"].pk, shop_id=stream_setup["shop"].pk, user_id=None, session_key="k")
    forget_running()
    snapshot_extras(viewer)
    with django_assert_num_queries(1):
        assert snapshot_extras(viewer) == {"experience": {"purchase_confirmation": "control"}}


def test_a_buy_enqueues_no_conversion_handler_without_a_running_experiment(stream_setup, make_experiment):
    from apps.experiments.assignment import running_specs
    from creatorcommerce.spine.registry import handlers_for

    name = "apps.experiments.handlers.conversions_on_order_placed"
    forget_running()
    assert name in handlers_for("order.placed")  # the copy is stale: it may be running
    running_specs(stream_setup["shop"].pk)  # the copy is read (on a snapshot, say): none runs
    assert name not in handlers_for("order.placed")
    make_experiment(stream_setup["creator"])
    forget_running()  # what the commit of the start does in this process
    running_specs(stream_setup["shop"].pk)
    assert name in handlers_for("order.placed")
