"""Reads of experiments: the list and the results (docs/experiments.md, "Results")."""

from __future__ import annotations

from django.utils import timezone

from creatorcommerce.admin import is_staff, user_shop
from creatorcommerce.fields import iso_utc

from . import stats
from .assignment import ramp_steps
from .exceptions import ExperimentNotFound
from .models import Experiment
from .services import arms_of
from .slots import SLOTS


def experiments_visible(*, user):
    """Staff: every experiment; a creator: their shop's."""
    qs = Experiment.objects.select_related("shop").order_by("-created_at", "-pk")
    if is_staff(user):
        return qs
    shop = user_shop(user)
    return qs.filter(shop=shop) if shop is not None else qs.none()


def experiment_get(*, user, experiment_id: int) -> Experiment:
    experiment = experiments_visible(user=user).filter(pk=experiment_id).first()
    if experiment is None:
        raise ExperimentNotFound()
    return experiment


def ramp_now(experiment: Experiment, now=None) -> dict:
    """The current ramp step (index, percent, since) and the next one, if any."""
    now = now or timezone.now()
    steps = ramp_steps(experiment.ramp)
    current = max((i for i, (at, _) in enumerate(steps) if at <= now), default=None)
    nxt = current + 1 if current is not None else 0
    return {
        "step": current,
        "percent": steps[current][1] if current is not None else 0,
        "since": iso_utc(steps[current][0]) if current is not None else None,
        "next": {"at": iso_utc(steps[nxt][0]), "percent": steps[nxt][1]} if nxt < len(steps) else None,
        "steps": [{"at": iso_utc(at), "percent": p} for at, p in steps],
    }


def experiment_body(experiment: Experiment) -> dict:
    return {
        "id": experiment.pk,
        "name": experiment.name,
        "shop": experiment.shop.slug if experiment.shop_id else None,
        "slot": experiment.slot,
        "unit": SLOTS[experiment.slot].unit,
        "status": experiment.status,
        "variants": experiment.variants,
        "ramp": ramp_now(experiment),
        "reason": experiment.reason,
        "created_at": iso_utc(experiment.created_at),
        "started_at": iso_utc(experiment.started_at) if experiment.started_at else None,
        "ended_at": iso_utc(experiment.ended_at) if experiment.ended_at else None,
    }


def _interval(value) -> dict | None:
    if value is None:
        return None
    return {"value": round(value[0], 6), "low": round(value[1], 6), "high": round(value[2], 6)}


def experiment_results(experiment: Experiment) -> dict:
    """Per variant: exposed viewers, converted viewers, the rate with its 95 % Wilson
    interval, client errors; for each non-control variant the difference from control
    (Newcombe) and the relative uplift (log ratio), both with 95 % intervals; the ramp now;
    the last guardrail evaluation."""
    arms = arms_of(experiment)
    control = arms[0]
    variants = []
    for arm in arms:
        low, high = stats.wilson(arm.conversions, arm.exposures)
        row = {
            "variant": arm.variant,
            "weight": next(v["weight"] for v in experiment.variants if v["key"] == arm.variant),
            "exposures": arm.exposures,
            "conversions": arm.conversions,
            "errors": arm.errors,
            "rate": round(arm.conversions / arm.exposures, 6) if arm.exposures else None,
            "rate_low": round(low, 6) if arm.exposures else None,
            "rate_high": round(high, 6) if arm.exposures else None,
            "difference": None,
            "uplift": None,
        }
        if arm is not control:
            row["difference"] = _interval(
                stats.difference(control.conversions, control.exposures, arm.conversions, arm.exposures)
            )
            row["uplift"] = _interval(
                stats.uplift(control.conversions, control.exposures, arm.conversions, arm.exposures)
            )
        variants.append(row)
    guardrail = {k: v for k, v in experiment.guardrail.items() if k != "best_lambda"}
    return {**experiment_body(experiment), "results": variants, "guardrail": guardrail}
