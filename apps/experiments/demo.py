"""The experiments app's demo step (docs/experiments.md, "Demo"): an experiment on the
purchase confirmation of the demo shop, running at full ramp, ``control`` (the standard
toast) against ``confetti`` weighted 50/50, made and started through the services (so its
writes are audited and are events, as in real use).

Idempotent: while the demo experiment runs (or is paused or a draft) a re-seed leaves it
be. Once it has ended (stopped by the creator, or rolled back by the guardrail, e.g. after
the demo's error spike) a re-seed starts a fresh one, so the demo always shows one running.
Another experiment running on the slot for the shop is left alone (nothing is started).
"""

from __future__ import annotations

import contextlib

from django.utils import timezone

from .assignment import spec_of, viewer_key
from .exceptions import SlotBusy
from .models import Experiment
from .services import experiment_create, experiment_transition
from .slots import CONTROL

DEMO_EXPERIMENT_NAME = "Confetti on the purchase confirmation"
DEMO_SLOT = "purchase_confirmation"
DEMO_VARIANTS = [{"key": CONTROL, "weight": 0.5}, {"key": "confetti", "weight": 0.5}]


def seed(context: dict) -> dict:
    creator = context["users"]["creator"]
    shop = creator.shop
    experiment = (
        Experiment.objects.filter(shop=shop, name=DEMO_EXPERIMENT_NAME)
        .exclude(status__in=[Experiment.Status.STOPPED, Experiment.Status.ROLLED_BACK])
        .order_by("-pk")
        .first()
    )
    if experiment is None:
        experiment = experiment_create(
            actor=creator,
            shop=shop,
            name=DEMO_EXPERIMENT_NAME,
            slot=DEMO_SLOT,
            variants=DEMO_VARIANTS,
            ramp=[{"at": timezone.now().isoformat(), "percent": 100}],
        )
    if experiment.status == Experiment.Status.DRAFT:
        # Another experiment running on the slot for the shop: this one stays a draft.
        with contextlib.suppress(SlotBusy):
            experiment = experiment_transition(experiment=experiment, verb="start", actor=creator)
    viewer = context["users"]["viewer"]
    variant = "-"
    if experiment.status == Experiment.Status.RUNNING:
        key = viewer_key(user_id=viewer.pk, session_key=None)
        variant = spec_of(experiment).hashed(key, timezone.now().timestamp())
    return {
        "experiment": experiment,
        "summary": [
            f"experiment {experiment.name!r} ({experiment.get_status_display().lower()}): purchase confirmation, "
            f"control vs confetti 50/50 at 100 %; {viewer.email} gets {variant}; results: "
            f"/admin/experiments/experiment/{experiment.pk}/results/"
        ],
    }
