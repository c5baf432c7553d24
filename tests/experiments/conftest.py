"""Fixtures of the experiments tests: the streams tests' live stream and sockets, and
experiments made through the services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.experiments.assignment import forget_running
from apps.experiments.services import experiment_create, experiment_transition
from tests.streams.conftest import _empty_local_cache, layer, session_key, stream_setup  # noqa: F401


@pytest.fixture(autouse=True)
def _fresh_running_copy():
    """Ids repeat across rolled-back tests: no test sees another's running experiments."""
    forget_running()
    yield
    forget_running()


def ramp_from(percent: float, *, ago: float = 60) -> list[dict]:
    return [{"at": (timezone.now() - timedelta(seconds=ago)).isoformat(), "percent": percent}]


@pytest.fixture
def make_experiment(db):
    """``make_experiment(creator, slot=..., variants=..., percent=100, start=True)``."""

    def _make(
        actor,
        *,
        shop="own",
        slot="purchase_confirmation",
        variants=None,
        percent=100,
        ramp=None,
        start=True,
        seed="seed-21",
        name="Confetti test",
    ):
        experiment = experiment_create(
            actor=actor,
            shop=actor.shop if shop == "own" else shop,
            name=name,
            slot=slot,
            variants=variants or [{"key": "control", "weight": 0.5}, {"key": "confetti", "weight": 0.5}],
            ramp=ramp or ramp_from(percent),
            seed=seed,
        )
        if start:
            experiment = experiment_transition(experiment=experiment, verb="start", actor=actor)
        return experiment

    return _make


@pytest.fixture(autouse=True)
def _client_events_unthrottled(settings):
    """Anonymous test requests share one address: only the rate-limit test limits them."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "client_events": "100000/min"},
    }
