"""The experiments in the admin (docs/experiments.md, "Admin"): creators see their shop's,
staff every one (and run platform-wide ones, without a shop). Writes go through the
services: creating, new weights or ramp, start, pause, resume and stop (actions); a rolled
back experiment says why at the top of its page; the results page draws the chart."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from creatorcommerce.admin import ShopScopedAdmin, is_staff, user_shop
from creatorcommerce.errors import DomainError

from .chart import results_svg
from .models import Experiment
from .selectors import experiment_results, ramp_now
from .services import experiment_create, experiment_transition, experiment_update, ramp_problems, variants_problems


class ExperimentForm(forms.ModelForm):
    class Meta:
        model = Experiment
        fields = ("shop", "name", "slot", "variants", "ramp")
        help_texts = {
            "variants": '[{"key": "control", "weight": 0.5}, {"key": "confetti", "weight": 0.5}] (control first)',
            "ramp": '[{"at": "2026-12-05T20:00:00+01:00", "percent": 5}, {"at": "...", "percent": 25}]',
        }

    def clean(self):
        data = super().clean()
        slot = data.get("slot") or (self.instance.slot if self.instance.pk else None)
        if "variants" in data and (code := variants_problems(slot, data["variants"])):
            self.add_error(
                "variants",
                ValidationError("Variants: control first, keys of the slot, weights summing to 1.", code=code),
            )
        if self.instance.pk and "variants" in data:  # noqa: SIM102
            if [v.get("key") for v in data["variants"] if isinstance(v, dict)] != self.instance.variant_keys:
                self.add_error("variants", "The variants' keys do not change after creation; only their weights.")
        if "ramp" in data and (code := ramp_problems(data["ramp"])):
            self.add_error(
                "ramp", ValidationError("Ramp: ISO times with their offset, ascending; percent 0-100.", code=code)
            )
        return data


@admin.register(Experiment)
class ExperimentAdmin(ShopScopedAdmin):
    form = ExperimentForm
    list_display = ("name", "shop_label", "slot", "status", "ramp_label", "started_at", "results_link")
    list_filter = ("status", "slot")
    actions = ("start", "pause", "resume", "stop")
    readonly_fields = ("why", "status", "seed", "started_at", "ended_at", "results_link")

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields += ["shop", "name", "slot"]
        return fields

    def get_fields(self, request, obj=None):
        fields = ["why", "name", "slot", "variants", "ramp", "status", "seed", "started_at", "ended_at", "results_link"]
        if is_staff(request.user):
            fields.insert(1, "shop")
        if obj is None:
            fields = [f for f in fields if f in ("shop", "name", "slot", "variants", "ramp")]
        return fields

    @admin.display(description="shop")
    def shop_label(self, obj):
        return obj.shop or "platform-wide"

    @admin.display(description="ramp now")
    def ramp_label(self, obj):
        return f"{ramp_now(obj)['percent']:g} %"

    @admin.display(description="why")
    def why(self, obj):
        if not obj.reason:
            return "-"
        return format_html('<strong class="experiment-reason">{}</strong>', obj.reason)

    @admin.display(description="results")
    def results_link(self, obj):
        return format_html('<a href="{}">Results</a>', reverse("admin:experiments_experiment_results", args=[obj.pk]))

    def save_model(self, request, obj, form, change):
        try:
            if change:
                weights = (
                    [v["weight"] for v in form.cleaned_data["variants"]] if "variants" in form.changed_data else None
                )
                ramp = form.cleaned_data["ramp"] if "ramp" in form.changed_data else None
                experiment_update(experiment=obj, actor=request.user, weights=weights, ramp=ramp)
            else:
                shop = form.cleaned_data.get("shop") if is_staff(request.user) else user_shop(request.user)
                obj.pk = experiment_create(
                    actor=request.user,
                    shop=shop,
                    name=obj.name,
                    slot=obj.slot,
                    variants=obj.variants,
                    ramp=obj.ramp,
                ).pk
        except DomainError as exc:
            messages.error(request, f"Not saved: {exc.message}")

    def _transition(self, request, queryset, verb):
        done = 0
        for experiment in queryset:
            try:
                experiment_transition(
                    experiment=experiment, verb=verb, actor=request.user, reason=f"{verb} in the admin"
                )
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{experiment}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{done} experiment(s): {verb}.", messages.SUCCESS)

    @admin.action(description="Start the selected experiments")
    def start(self, request, queryset):
        self._transition(request, queryset, "start")

    @admin.action(description="Pause the selected experiments (everyone gets the standard experience)")
    def pause(self, request, queryset):
        self._transition(request, queryset, "pause")

    @admin.action(description="Resume the selected experiments")
    def resume(self, request, queryset):
        self._transition(request, queryset, "resume")

    @admin.action(description="Stop the selected experiments (for good)")
    def stop(self, request, queryset):
        self._transition(request, queryset, "stop")

    def has_delete_permission(self, request, obj=None):
        return False  # an experiment's record stays; stop it instead

    # -- results --------------------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view(self.results_view)
        return [path("<int:pk>/results/", view, name="experiments_experiment_results"), *super().get_urls()]

    def results_view(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        experiment = self.get_queryset(request).filter(pk=pk).first()
        if experiment is None:
            raise Http404("No such experiment.")
        results = experiment_results(experiment)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": experiment,
            "title": f"Results: {experiment.name}",
            "results": results,
            "chart": results_svg(results["results"]),
            "guardrail_json": json.dumps(results["guardrail"], indent=1),
        }
        return TemplateResponse(request, "experiments/admin/results.html", context)
