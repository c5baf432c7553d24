"""The experiments demo step (docs/experiments.md, "Demo"): one running experiment on the
demo shop's purchase confirmation, control against confetti 50/50 at full ramp, made through
the services; a re-seed duplicates nothing, and starts a fresh one once the last has ended."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.audit.models import AuditEntry
from apps.experiments.demo import DEMO_EXPERIMENT_NAME
from apps.experiments.models import Experiment
from apps.experiments.services import experiment_transition
from apps.streams.models import Stream
from tests.helpers import events_since, last_event_id

pytestmark = pytest.mark.django_db


def test_the_demo_runs_a_confetti_experiment_once(capsys):
    mark = last_event_id()
    call_command("seed_demo")
    drop = Stream.objects.get(title="Friday night drop")
    (experiment,) = Experiment.objects.filter(name=DEMO_EXPERIMENT_NAME)
    assert experiment.shop_id == drop.shop_id
    assert experiment.slot == "purchase_confirmation"
    assert experiment.status == Experiment.Status.RUNNING
    assert experiment.variants == [{"key": "control", "weight": 0.5}, {"key": "confetti", "weight": 0.5}]
    assert [step["percent"] for step in experiment.ramp] == [100]
    assert [e.type for e in events_since(mark, "experiment.created", "experiment.started")] == [
        "experiment.created",
        "experiment.started",
    ]
    assert AuditEntry.objects.filter(action="experiment.started").count() == 1
    assert f"/admin/experiments/experiment/{experiment.pk}/results/" in capsys.readouterr().out

    call_command("seed_demo")  # again: nothing new
    assert list(Experiment.objects.filter(name=DEMO_EXPERIMENT_NAME)) == [experiment]

    # Ended (here stopped; the guardrail's rollback likewise): a re-seed runs a fresh one.
    experiment_transition(experiment=experiment, verb="stop", actor=experiment.created_by)
    call_command("seed_demo")
    made = Experiment.objects.filter(name=DEMO_EXPERIMENT_NAME).order_by("pk")
    assert list(made.values_list("status", flat=True)) == [Experiment.Status.STOPPED, Experiment.Status.RUNNING]
