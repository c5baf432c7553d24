"""Experiments on micro-interactions: weighted variants of one slot, a ramp, guardrails;
sticky assignments; per-variant aggregates (docs/experiments.md)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.accounts.models import Shop

from .slots import SLOT_CHOICES


def new_seed() -> str:
    return secrets.token_hex(8)


class Experiment(models.Model):
    """One slot, varied for a shop's viewers (``shop``) or everyone's (no shop: staff only).

    ``variants``: ``[{"key": "control", "weight": 0.5}, {"key": "confetti", "weight": 0.5}]``
    (control first, weights sum to 1); ``ramp``: ``[{"at": ISO time, "percent": 5}, ...]``
    (the share of viewers in the experiment from each time on; nobody before the first).
    Written by apps/experiments/services.py only."""

    SHOP_PATH = "shop"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        STOPPED = "stopped", "Stopped"
        ROLLED_BACK = "rolled_back", "Rolled back"

    shop = models.ForeignKey(
        Shop,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="experiments",
        help_text="Empty: platform-wide.",
    )
    name = models.CharField(max_length=120)
    slot = models.CharField(max_length=32, choices=SLOT_CHOICES)
    variants = models.JSONField()
    ramp = models.JSONField()
    seed = models.CharField(max_length=32, default=new_seed, help_text="Hashed with the viewer into [0, 1).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    reason = models.TextField(blank=True, help_text="Why it was rolled back, paused or stopped.")
    guardrail = models.JSONField(default=dict, blank=True, help_text="The last guardrail evaluation.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self):
        return f"{self.name} ({self.slot})"

    @property
    def variant_keys(self) -> list[str]:
        return [v["key"] for v in self.variants]


class Assignment(models.Model):
    """A viewer's variant, recorded at their first exposure to the experiment: kept while it
    runs, whatever the ramp and weights do later. ``viewer`` is ``u:<user id>`` or ``s:`` and
    a digest of the anonymous session key (docs/experiments.md, "Assignment")."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="assignments")
    viewer = models.CharField(max_length=80)
    variant = models.CharField(max_length=32)
    assigned_at = models.DateTimeField()
    converted_at = models.DateTimeField(null=True, blank=True)
    converted_order = models.BigIntegerField(null=True, blank=True)
    errored_at = models.DateTimeField(null=True, blank=True, help_text="their first client error in a slot")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "viewer"], name="assignment_once_per_viewer")]
        indexes = [models.Index(fields=["viewer"])]

    def __str__(self):
        return f"{self.viewer[:12]}… → {self.variant}"


class Exposure(models.Model):
    """An assigned viewer exposed in a stream (first time only): conversions count orders in
    the streams where the viewer saw the variant."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="exposures")
    stream_id = models.BigIntegerField()
    at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["assignment", "stream_id"], name="exposure_once_per_stream")]

    def __str__(self):
        return f"{self.assignment} in stream {self.stream_id}"


class VariantStats(models.Model):
    """Per experiment and variant, kept incrementally (F() updates in the services that
    count): exposed viewers, converted viewers, and viewers who reported a client error in
    the slot (each viewer once: one client cannot trip the guardrail alone)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="stats")
    variant = models.CharField(max_length=32)
    exposures = models.PositiveIntegerField(default=0)
    conversions = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "variant"], name="stats_once_per_variant"),
            models.CheckConstraint(condition=Q(conversions__lte=models.F("exposures")), name="conversions_of_exposed"),
            models.CheckConstraint(condition=Q(errors__lte=models.F("exposures")), name="errors_of_exposed"),
        ]
        ordering = ["pk"]

    def __str__(self):
        return f"{self.variant}: {self.conversions}/{self.exposures}"
