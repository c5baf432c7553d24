"""Slot providers (docs/experiments.md, "Slot providers"): the personalisation app (or any
app above experiments) registers what a non-control variant adds to the snapshot, e.g. the
personal pin order; control viewers get exactly the standard experience, and a failing or
missing provider falls back to it."""

from __future__ import annotations

import pytest

from apps.experiments import slots
from apps.experiments.assignment import forget_running
from apps.streams.extras import Viewer, snapshot_extras

pytestmark = pytest.mark.django_db

PERSONAL = [{"key": "control", "weight": 0.0}, {"key": "personal", "weight": 1.0}]
CONTROL = [{"key": "control", "weight": 1.0}, {"key": "personal", "weight": 0.0}]


@pytest.fixture
def provider(monkeypatch):
    calls = []
    monkeypatch.setattr(slots, "_providers", {})

    @slots.variant_payload("pin_order")
    def personal_pins(*, viewer, variant):
        calls.append((viewer.stream_id, variant))
        return {"pin_order": ["PIN-1", "PIN-0"]}

    return calls


def _viewer(setup, user_id=41):
    return Viewer(stream_id=setup["stream"].pk, shop_id=setup["shop"].pk, user_id=user_id, session_key=None)


def test_a_personal_viewer_gets_the_providers_fields(stream_setup, make_experiment, provider):
    make_experiment(stream_setup["creator"], slot="pin_order", variants=PERSONAL)
    forget_running()
    assert snapshot_extras(_viewer(stream_setup)) == {
        "experience": {"pin_order": "personal"},
        "pin_order": ["PIN-1", "PIN-0"],
    }
    assert provider == [(stream_setup["stream"].pk, "personal")]
    assert slots.has_provider("pin_order")


def test_control_never_calls_the_provider(stream_setup, make_experiment, provider):
    make_experiment(stream_setup["creator"], slot="pin_order", variants=CONTROL)
    forget_running()
    assert snapshot_extras(_viewer(stream_setup)) == {"experience": {"pin_order": "control"}}
    assert provider == []


def test_without_or_with_a_failing_provider_the_standard_order_stays(stream_setup, make_experiment, monkeypatch):
    make_experiment(stream_setup["creator"], slot="pin_order", variants=PERSONAL)
    forget_running()
    monkeypatch.setattr(slots, "_providers", {})
    assert snapshot_extras(_viewer(stream_setup)) == {"experience": {"pin_order": "personal"}}

    @slots.variant_payload("pin_order")
    def broken(*, viewer, variant):
        raise RuntimeError("model not loaded")

    assert snapshot_extras(_viewer(stream_setup)) == {"experience": {"pin_order": "personal"}}
    with pytest.raises(ValueError):
        slots.variant_payload("no_such_slot")
