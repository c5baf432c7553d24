"""Every write of the experiments app (docs/experiments.md): experiments and their
transitions, client events (exposures and errors), conversions, guardrails.

Counting is incremental: a first exposure, a conversion and a client error each add one to
their variant's ``VariantStats`` row (an F() update) in the transaction that records them,
so results and guardrails read one row per variant, never the events.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.audit.services import audit_record
from apps.streams.models import Stream
from apps.streams.services import stream_groups
from creatorcommerce.admin import is_staff
from creatorcommerce.spine.events import emit

from . import stats
from .assignment import Spec, forget_running, spec_of, stream_key, viewer_key
from .exceptions import (
    InvalidExperiment,
    InvalidTransition,
    PlatformWideNeedsStaff,
    SlotBusy,
)
from .models import Assignment, Experiment, Exposure, VariantStats
from .slots import CONTROL, SLOTS, STREAM

MAX_VARIANTS = 5
MAX_RAMP_STEPS = 12

# -- experiments ------------------------------------------------------------------------------


def variants_problems(slot: str, variants) -> str | None:
    if slot not in SLOTS:
        return "invalid_slot"
    if not isinstance(variants, list) or not 2 <= len(variants) <= MAX_VARIANTS:
        return "invalid_variants"
    keys = []
    total = 0.0
    for v in variants:
        if not isinstance(v, dict) or set(v) != {"key", "weight"}:
            return "invalid_variants"
        w = v["weight"]
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            return "invalid_variants"
        keys.append(v["key"])
        total += w
    if keys[0] != CONTROL or len(set(keys)) != len(keys):
        return "invalid_variants"
    if any(k not in SLOTS[slot].variants for k in keys[1:]):
        return "invalid_variants"
    if abs(total - 1.0) > 0.001:
        return "invalid_variants"
    return None


def ramp_problems(ramp) -> str | None:
    if not isinstance(ramp, list) or not 1 <= len(ramp) <= MAX_RAMP_STEPS:
        return "invalid_ramp"
    previous = None
    for step in ramp:
        if not isinstance(step, dict) or set(step) != {"at", "percent"} or not isinstance(step["at"], str):
            return "invalid_ramp"
        at = parse_datetime(step["at"]) if len(step["at"]) <= 40 else None
        p = step["percent"]
        if at is None or at.tzinfo is None:
            return "invalid_ramp"
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or not 0 < p <= 100:
            return "invalid_ramp"
        if previous is not None and at <= previous:
            return "invalid_ramp"
        previous = at
    return None


def _normal_ramp(ramp: list[dict]) -> list[dict]:
    return [{"at": parse_datetime(s["at"]).astimezone(UTC).isoformat(), "percent": s["percent"]} for s in ramp]


_MESSAGES = {
    "invalid_slot": "Unknown slot.",
    "invalid_variants": "Variants: 2-5 of {key, weight}, control first, keys of the slot, weights summing to 1.",
    "invalid_ramp": "Ramp: 1-12 of {at: ISO time with offset, percent: 0-100}, times ascending.",
    "invalid_name": "A name of 1-120 characters.",
}


def _check(code: str | None) -> None:
    if code:
        raise InvalidExperiment(_MESSAGES[code], code=code)


def _about(experiment: Experiment) -> dict:
    return {"experiment": experiment.pk, "shop": experiment.shop_id, "slot": experiment.slot}


def scope_groups(experiment: Experiment) -> list[str]:
    """The viewers' groups of the streams the experiment reaches (live and scheduled)."""
    streams = Stream.objects.filter(status__in=[Stream.Status.LIVE, Stream.Status.SCHEDULED])
    if experiment.shop_id is not None:
        streams = streams.filter(shop_id=experiment.shop_id)
    return [g for pk in streams.order_by("pk").values_list("pk", flat=True) for g in stream_groups(pk)]


def experiment_create(
    *, actor, shop, name: str, slot: str, variants: list[dict], ramp: list[dict], seed: str | None = None
) -> Experiment:
    """A draft experiment of ``shop`` (None: platform-wide, staff only)."""
    if shop is None and not is_staff(actor):
        raise PlatformWideNeedsStaff()
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        _check("invalid_name")
    _check(variants_problems(slot, variants))
    _check(ramp_problems(ramp))
    with transaction.atomic():
        experiment = Experiment.objects.create(
            shop=shop,
            name=name.strip(),
            slot=slot,
            variants=[{"key": v["key"], "weight": float(v["weight"])} for v in variants],
            ramp=_normal_ramp(ramp),
            created_by=actor if getattr(actor, "pk", None) else None,
            **({"seed": seed} if seed else {}),
        )
        VariantStats.objects.bulk_create(VariantStats(experiment=experiment, variant=v["key"]) for v in variants)
        audit_record(actor=actor, action="experiment.created", obj=experiment, shop=shop)
        emit("experiment.created", {**_about(experiment), "name": experiment.name})
    return experiment


def experiment_update(
    *, experiment: Experiment, actor, weights: list[float] | None = None, ramp: list[dict] | None = None
) -> Experiment:
    """New weights (same variants, same order) and/or a new ramp, at any status but ended.
    Viewers with an assignment keep their variant (docs/experiments.md, "Assignment")."""
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if experiment.status in (Experiment.Status.STOPPED, Experiment.Status.ROLLED_BACK):
            raise InvalidTransition("An ended experiment does not change.")
        changed = []
        if weights is not None:
            variants = [{"key": k, "weight": w} for k, w in zip(experiment.variant_keys, weights, strict=False)]
            if len(weights) != len(experiment.variants):
                _check("invalid_variants")
            _check(variants_problems(experiment.slot, variants))
            experiment.variants = [{"key": v["key"], "weight": float(v["weight"])} for v in variants]
            changed.append("weights")
        if ramp is not None:
            _check(ramp_problems(ramp))
            experiment.ramp = _normal_ramp(ramp)
            changed.append("ramp")
        if not changed:
            return experiment
        experiment.save(update_fields=["variants", "ramp"])
        audit_record(
            actor=actor, action="experiment.updated", obj=experiment, shop=experiment.shop, details={"changed": changed}
        )
        emit("experiment.updated", {**_about(experiment), "changed": changed}, groups=scope_groups(experiment))
        transaction.on_commit(forget_running)
    return experiment


_TRANSITIONS = {
    # verb: (from statuses, to status)
    "start": ((Experiment.Status.DRAFT,), Experiment.Status.RUNNING),
    "pause": ((Experiment.Status.RUNNING,), Experiment.Status.PAUSED),
    "resume": ((Experiment.Status.PAUSED,), Experiment.Status.RUNNING),
    "stop": ((Experiment.Status.RUNNING, Experiment.Status.PAUSED, Experiment.Status.DRAFT), Experiment.Status.STOPPED),
}
_PAST = {"start": "started", "pause": "paused", "resume": "resumed", "stop": "stopped"}


def _slot_free(experiment: Experiment) -> bool:
    running = Experiment.objects.filter(status=Experiment.Status.RUNNING, slot=experiment.slot).exclude(
        pk=experiment.pk
    )
    if experiment.shop_id is not None:
        running = running.filter(Q(shop_id=experiment.shop_id) | Q(shop__isnull=True))
    return not running.exists()


def experiment_transition(*, experiment: Experiment, verb: str, actor, reason: str = "", now=None) -> Experiment:
    """Start, pause, resume or stop (docs/experiments.md, "Life cycle"); 409
    ``invalid_transition`` from another status, ``slot_busy`` when starting or resuming
    while another experiment runs on the slot for the same viewers."""
    sources, target = _TRANSITIONS[verb]
    now = now or timezone.now()
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if experiment.status not in sources:
            raise InvalidTransition(f"A {experiment.get_status_display().lower()} experiment cannot {verb}.")
        if target == Experiment.Status.RUNNING and not _slot_free(experiment):
            raise SlotBusy()
        experiment.status = target
        fields = ["status", "reason"]
        experiment.reason = (reason or "")[:2000]
        if verb == "start":
            experiment.started_at = now
            fields.append("started_at")
        if verb == "stop":
            experiment.ended_at = now
            fields.append("ended_at")
        experiment.save(update_fields=fields)
        audit_record(
            actor=actor, action=f"experiment.{_PAST[verb]}", obj=experiment, reason=reason, shop=experiment.shop
        )
        emit(
            f"experiment.{_PAST[verb]}",
            {**_about(experiment), "reason": experiment.reason},
            groups=scope_groups(experiment),
        )
        transaction.on_commit(forget_running)
    return experiment


def experiment_rollback(
    *, experiment: Experiment, reason: str, detail: str, checks: dict, now=None
) -> Experiment | None:
    """The guardrail's own rollback: everyone gets the standard experience (the viewers
    connected now through ``experiment.rolled_back`` on their streams' groups). None when
    the experiment was no longer running."""
    now = now or timezone.now()
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().filter(pk=experiment.pk).first()
        if experiment is None or experiment.status != Experiment.Status.RUNNING:
            return None
        experiment.status = Experiment.Status.ROLLED_BACK
        experiment.reason = f"Rolled back by the guardrail ({reason}): {detail}"
        experiment.ended_at = now
        experiment.guardrail = {**experiment.guardrail, "at": now.isoformat(), "checks": checks, "verdict": reason}
        experiment.save(update_fields=["status", "reason", "ended_at", "guardrail"])
        audit_record(
            actor=None,
            action="experiment.rolled_back",
            obj=experiment,
            reason=experiment.reason,
            shop=experiment.shop,
            details={"reason": reason, "checks": checks},
        )
        emit(
            "experiment.rolled_back",
            {**_about(experiment), "reason": reason, "detail": detail},
            groups=scope_groups(experiment),
        )
        transaction.on_commit(forget_running)
    return experiment


# -- guardrails -------------------------------------------------------------------------------


def limits() -> stats.Limits:
    return stats.Limits(
        alpha=settings.EXPERIMENT_GUARDRAIL_ALPHA,
        tau=settings.EXPERIMENT_MSPRT_TAU,
        min_exposures=settings.EXPERIMENT_MIN_EXPOSURES,
        error_rate_max=settings.EXPERIMENT_ERROR_RATE_MAX,
        error_min_count=settings.EXPERIMENT_ERROR_MIN_COUNT,
    )


def arms_of(experiment: Experiment) -> list[stats.Arm]:
    rows = {s.variant: s for s in VariantStats.objects.filter(experiment=experiment)}
    return [
        stats.Arm(k, rows[k].exposures, rows[k].conversions, rows[k].errors) if k in rows else stats.Arm(k, 0, 0, 0)
        for k in experiment.variant_keys
    ]


def guardrails_evaluate(*, now=None) -> list[int]:
    """Beat, every ``EXPERIMENT_GUARDRAIL_SECONDS``: each running experiment's guardrails;
    returns the ids rolled back."""
    now = now or timezone.now()
    rolled = []
    for experiment in Experiment.objects.filter(status=Experiment.Status.RUNNING).order_by("pk"):
        verdict = stats.evaluate(arms_of(experiment), limits(), best_lambda=experiment.guardrail.get("best_lambda"))
        if verdict.rollback:
            if experiment_rollback(
                experiment=experiment, reason=verdict.reason, detail=verdict.detail, checks=verdict.checks, now=now
            ):
                rolled.append(experiment.pk)
            continue
        Experiment.objects.filter(pk=experiment.pk, status=Experiment.Status.RUNNING).update(
            guardrail={
                "at": now.isoformat(),
                "checks": verdict.checks,
                "best_lambda": verdict.best_lambda,
                "verdict": "ok",
            }
        )
    return rolled


# -- client events ----------------------------------------------------------------------------


def _running_for(stream_shop: int, slot: str) -> Experiment | None:
    candidates = Experiment.objects.filter(status=Experiment.Status.RUNNING, slot=slot).filter(
        Q(shop_id=stream_shop) | Q(shop__isnull=True)
    )
    found = sorted(candidates, key=lambda e: e.shop_id is None)  # the shop's own first
    return found[0] if found else None


def client_events_record(*, user_id: int | None, session_key: str | None, events: list[dict], now=None) -> dict:
    """A validated batch (apps/experiments/api.py) in one transaction: exposures record the
    viewer's assignment at the first one and count the variant's exposed viewer once;
    an exposed viewer's first error in the slot counts against their variant. Returns the
    counts."""
    now = now or timezone.now()
    viewer = viewer_key(user_id=user_id, session_key=session_key)
    shops = dict(Stream.objects.filter(pk__in={e["stream"] for e in events}).values_list("pk", "shop_id"))
    counted = {"exposures": 0, "errors": 0, "ignored": 0}
    experiments: dict[tuple[int, str], Experiment | None] = {}
    with transaction.atomic():
        for event in events:
            shop_id = shops[event["stream"]]
            slot = event.get("slot")
            experiment = None
            if slot is not None:
                if (shop_id, slot) not in experiments:
                    experiments[(shop_id, slot)] = _running_for(shop_id, slot)
                experiment = experiments[(shop_id, slot)]
            if event["kind"] == "exposure":
                # A stream-level slot's exposure is the stream's (stream_exposure_record),
                # never a client's to report.
                viewer_slot = experiment is not None and SLOTS[experiment.slot].unit != STREAM
                ok = viewer_slot and viewer is not None and _expose(experiment, viewer, event, now)
                counted["exposures" if ok else "ignored"] += 1
            else:
                _error(experiment, viewer, event, shop_id, now)
                counted["errors"] += 1
    return counted


def _expose(experiment: Experiment, viewer: str, event: dict, now) -> bool:
    """The viewer's first exposure records their assignment; a report that is not the
    variant the viewer has (sticky record, else the hash now) is ignored."""
    assignment = Assignment.objects.filter(experiment=experiment, viewer=viewer).first()
    if assignment is None:
        variant = spec_of(experiment).hashed(viewer, now.timestamp())
        if variant is None or variant != event["variant"]:
            return False
        try:
            with transaction.atomic():
                assignment = Assignment.objects.create(
                    experiment=experiment, viewer=viewer, variant=variant, assigned_at=now
                )
        except IntegrityError:  # a concurrent batch of the same viewer recorded it first
            assignment = Assignment.objects.get(experiment=experiment, viewer=viewer)
        else:
            VariantStats.objects.filter(experiment=experiment, variant=variant).update(exposures=F("exposures") + 1)
    if assignment.variant != event["variant"]:
        return False
    _, created = Exposure.objects.get_or_create(assignment=assignment, stream_id=event["stream"], defaults={"at": now})
    if created:
        emit("experiment.exposed", {**_about(experiment), "variant": assignment.variant, "stream": event["stream"]})
    return True


def _error(experiment: Experiment | None, viewer: str | None, event: dict, shop_id: int, now) -> None:
    """An error counts against a running experiment's variant when the reporting viewer is
    assigned to it (exposed), once per viewer: the guardrail's rate is erroring viewers per
    exposed viewer, so no single client trips it. Every error is a spine event."""
    assignment = None
    if experiment is not None and viewer is not None:
        assignment = Assignment.objects.filter(experiment=experiment, viewer=viewer).first()
    if assignment is not None and Assignment.objects.filter(pk=assignment.pk, errored_at__isnull=True).update(
        errored_at=now
    ):
        VariantStats.objects.filter(experiment=experiment, variant=assignment.variant).update(errors=F("errors") + 1)
    emit(
        "client_error.reported",
        {
            "stream": event["stream"],
            "shop": shop_id,
            "slot": event.get("slot"),
            "variant": assignment.variant if assignment is not None else event.get("variant"),
            "experiment": experiment.pk if assignment is not None else None,
            "message": event.get("message", ""),
        },
    )


# -- stream-level slots -----------------------------------------------------------------------


def stream_exposure_record(*, spec: Spec, stream_id: int, at: datetime) -> str | None:
    """The variant ``spec``'s experiment gives stream ``stream_id`` as a whole (a
    stream-level slot, docs/experiments.md, "Stream-level slots"), at the moment the slot's
    micro-interaction is decided for it (the devices' urgency cue: fired or held back).
    The stream's first decision records its assignment and exposure and counts one exposed
    stream, as a viewer's first exposure does; later ones read the assignment. None when the
    stream is outside the ramp or the experiment no longer runs (this process's copy of the
    running experiments may be a second stale; the database is not): the standard. Runs
    in the caller's transaction, in a savepoint of its own."""
    key = stream_key(stream_id)
    running = Experiment.Status.RUNNING
    with transaction.atomic():
        found = (
            Assignment.objects.filter(experiment_id=spec.id, viewer=key)
            .values_list("variant", "experiment__status")
            .first()
        )
        if found is not None:
            return found[0] if found[1] == running else None
        experiment = Experiment.objects.filter(pk=spec.id, status=running).first()
        variant = spec.hashed(key, at.timestamp()) if experiment is not None else None
        if variant is None:
            return None
        try:
            with transaction.atomic():
                assignment = Assignment.objects.create(
                    experiment=experiment, viewer=key, variant=variant, assigned_at=at
                )
        except IntegrityError:  # another worker decided this stream's first cue meanwhile
            return Assignment.objects.get(experiment=experiment, viewer=key).variant
        VariantStats.objects.filter(experiment=experiment, variant=variant).update(exposures=F("exposures") + 1)
        Exposure.objects.create(assignment=assignment, stream_id=stream_id, at=at)
        emit("experiment.exposed", {**_about(experiment), "variant": variant, "stream": stream_id})
    return variant


# -- conversions ------------------------------------------------------------------------------


def conversion_record(*, payload: dict, at: datetime) -> list[int]:
    """``order.placed`` (apps/experiments/handlers.py): an order in a stream by a viewer
    exposed there to a running experiment converts them, once per experiment, for their
    assigned variant; and, for a stream-level slot, the first order in an exposed stream
    converts the stream. Returns the experiments counted."""
    stream = payload.get("stream")
    if stream is None:
        return []
    exposures = (
        Exposure.objects.filter(
            stream_id=stream,
            at__lte=at,
            # The buyer, and the stream itself as the unit of a stream-level slot: its first
            # order after the exposure converts it (docs/experiments.md, "Stream-level slots").
            assignment__viewer__in=[viewer_key(user_id=payload["buyer"], session_key=None), stream_key(stream)],
            assignment__converted_at__isnull=True,
            assignment__experiment__status=Experiment.Status.RUNNING,
        )
        .select_related("assignment__experiment")
        .order_by("pk")
    )
    counted = []
    for exposure in exposures:
        assignment = exposure.assignment
        if assignment.experiment_id in counted:
            continue
        updated = Assignment.objects.filter(pk=assignment.pk, converted_at__isnull=True).update(
            converted_at=at, converted_order=payload["order"]
        )
        if not updated:
            continue
        experiment = assignment.experiment
        VariantStats.objects.filter(experiment=experiment, variant=assignment.variant).update(
            conversions=F("conversions") + 1
        )
        emit(
            "experiment.converted",
            {**_about(experiment), "variant": assignment.variant, "stream": stream, "order": payload["order"]},
        )
        counted.append(experiment.pk)
    return counted
