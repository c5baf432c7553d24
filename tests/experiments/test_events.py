"""The exact events the experiments' services send (docs/events.md, "Experiments")."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from apps.experiments.assignment import spec_of
from apps.experiments.services import (
    client_events_record,
    conversion_record,
    experiment_create,
    experiment_rollback,
    experiment_transition,
    experiment_update,
)
from apps.streams.models import Stream
from tests.experiments.conftest import ramp_from
from tests.helpers import captured_events

pytestmark = pytest.mark.django_db

VARIANTS = [{"key": "control", "weight": 0.5}, {"key": "confetti", "weight": 0.5}]


def test_life_cycle_events(stream_setup):
    creator, stream = stream_setup["creator"], stream_setup["stream"]
    scheduled = Stream.objects.create(shop=creator.shop, title="Later", starts_at=timezone.now())
    groups = [f"stream.{stream.pk}", f"stream.{scheduled.pk}"]
    with captured_events() as events:
        experiment = experiment_create(
            actor=creator,
            shop=creator.shop,
            name="Confetti",
            slot="purchase_confirmation",
            variants=VARIANTS,
            ramp=ramp_from(5),
        )
        about = {"experiment": experiment.pk, "shop": creator.shop.pk, "slot": "purchase_confirmation"}
        experiment_transition(experiment=experiment, verb="start", actor=creator)
        experiment_update(experiment=experiment, actor=creator, weights=[0.4, 0.6], ramp=ramp_from(25))
        experiment_transition(experiment=experiment, verb="pause", actor=creator, reason="checking")
        experiment_transition(experiment=experiment, verb="resume", actor=creator)
        experiment_rollback(experiment=experiment, reason="error_rate", detail="confetti: 6 errors", checks={})
    assert events == [
        ("experiment.created", {**about, "name": "Confetti"}, []),
        ("experiment.started", {**about, "reason": ""}, groups),
        ("experiment.updated", {**about, "changed": ["weights", "ramp"]}, groups),
        ("experiment.paused", {**about, "reason": "checking"}, groups),
        ("experiment.resumed", {**about, "reason": ""}, groups),
        ("experiment.rolled_back", {**about, "reason": "error_rate", "detail": "confetti: 6 errors"}, groups),
    ]


def test_measurement_events(stream_setup, make_experiment):
    stream = stream_setup["stream"]
    experiment = make_experiment(stream_setup["creator"])
    about = {"experiment": experiment.pk, "shop": experiment.shop_id, "slot": "purchase_confirmation"}
    variant = spec_of(experiment).hashed("u:77", time.time())
    exposure = {"kind": "exposure", "stream": stream.pk, "slot": "purchase_confirmation", "variant": variant}
    error = {
        "kind": "error",
        "stream": stream.pk,
        "slot": "purchase_confirmation",
        "variant": "confetti",
        "message": "boom",
    }
    with captured_events() as events:
        client_events_record(user_id=77, session_key=None, events=[exposure, exposure, error])
        conversion_record(payload={"stream": stream.pk, "buyer": 77, "order": 5}, at=timezone.now())
        conversion_record(payload={"stream": stream.pk, "buyer": 77, "order": 6}, at=timezone.now())
    assert events == [
        ("experiment.exposed", {**about, "variant": variant, "stream": stream.pk}, []),
        (
            "client_error.reported",
            {
                "stream": stream.pk,
                "shop": experiment.shop_id,
                "slot": "purchase_confirmation",
                "variant": variant,  # the viewer's assigned variant, whatever the client said
                "experiment": experiment.pk,
                "message": "boom",
            },
            [],
        ),
        ("experiment.converted", {**about, "variant": variant, "stream": stream.pk, "order": 5}, []),
    ]
