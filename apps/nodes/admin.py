"""The sync plane in the admin, staff only: register an edge (its id and the JWK its
``manage.py node_key`` printed), read each node's sync state and mirrors, and reconcile
it (docs/edge.md, "Reconciliation": the overview of every node and each node's page)."""

import json
from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from apps.accounts.models import Shop
from apps.catalog.models import Location
from creatorcommerce.admin import ReadOnlyStaffAdmin, is_staff
from creatorcommerce.signing.models import SigningKey

from .models import CatalogState, Node, NodeAllocation, NodeEvent, NodeOrder, NodeStock, RelayState
from .reconciliation import days_compared, lag_window, node_reconciliation
from .selectors import node_gaps
from .services import node_register, node_set_active


def ranges_text(gaps) -> str:
    """Missing ranges as people read them: ``3-4, 9``."""
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in gaps)


def _plural(n, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def totals_text(summary) -> str:
    """``{"orders", "units", "amount": {currency: decimal}}`` in one line."""
    if summary is None:
        return "not reported"
    money = ", ".join(f"{currency} {amount}" for currency, amount in summary["amount"].items()) or "no money"
    return f"{_plural(summary['orders'], 'order')} · {_plural(summary['units'], 'unit')} · {money}"


def difference_text(edge, cloud) -> str:
    """What the edge reports beyond the cloud (negative: less), per count and currency:
    ``+1 order · +1 unit · USD +29.00``; empty when nothing differs."""
    if edge is None:
        return "the edge never reported this day"
    cloud = cloud or {"orders": 0, "units": 0, "amount": {}}
    parts = []
    for key, word in (("orders", "order"), ("units", "unit")):
        delta = edge[key] - cloud[key]
        if delta:
            parts.append(f"{delta:+d} {word}" + ("" if abs(delta) == 1 else "s"))
    for currency in sorted({*edge["amount"], *cloud["amount"]}):
        delta = Decimal(edge["amount"].get(currency, "0")) - Decimal(cloud["amount"].get(currency, "0"))
        if delta:
            parts.append(f"{currency} {delta:+.2f}")
    return " · ".join(parts) or "counts differ per currency"


def duration_text(seconds: float) -> str:
    """A lag as people read it: ``45 s``, ``12 min``, ``2 h 56 min``, ``3 d 4 h``."""
    if 0 < seconds < 1:
        return "under 1 s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 3600:
        return f"{minutes} min"
    if seconds < 86400:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


def ago_text(when) -> str:
    """``3 minutes ago``; ``just now`` under a minute (``timesince`` would say ``0 minutes``)."""
    if when is None:
        return ""
    return "just now" if timezone.now() - when < timedelta(minutes=1) else f"{timesince(when)} ago"


def attention(rec: dict) -> list[str]:
    """What a staff member on call must look at for one node, shortest first; empty: in sync."""
    if rec["last_sync_at"] is None:
        return ["nothing received yet"]
    flags = []
    if not rec["active"]:
        flags.append("inactive: batches refused")
    if rec["lag_events"]:
        flags.append(f"behind by {_plural(rec['lag_events'], 'event')} ({duration_text(rec['lag_seconds'])})")
    if rec["gaps"]:
        flags.append(f"missing {ranges_text(rec['gaps'][:5])}{' …' if len(rec['gaps']) > 5 else ''}")
    differ = sum(1 for day in rec["days"] if not day["match"])
    if not rec["match"] or differ:
        flags.append(f"totals differ ({_plural(differ, 'day')})" if differ else "totals differ")
    if rec["unresolved"]["events"]:
        flags.append(f"{_plural(rec['unresolved']['events'], 'event')} not applied")
    return flags


class NodeAddForm(forms.ModelForm):
    public_jwk = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), help_text="The JSON that `manage.py node_key` prints on the edge."
    )

    shop = forms.ModelChoiceField(
        Shop.objects.all(), required=False, to_field_name="slug", help_text="The shop the edge sells."
    )
    venue = forms.ModelChoiceField(
        Location.objects.filter(kind=Location.Kind.VENUE).select_related("shop"),
        required=False,
        help_text="The shop's venue location whose stock the edge owns from its first catalog pull.",
    )

    class Meta:
        model = Node
        fields = ("node_id",)

    def clean(self):
        cleaned = super().clean()
        shop, venue = cleaned.get("shop"), cleaned.get("venue")
        if (shop is None) != (venue is None):
            raise forms.ValidationError("Give both the shop and its venue, or neither.")
        if venue is not None and venue.shop_id != shop.pk:
            self.add_error("venue", "Choose a venue of that shop.")
        elif venue is not None and venue.owner_node and venue.owner_node != cleaned.get("node_id"):
            self.add_error("venue", f"Node {venue.owner_node} owns this venue's stock already.")
        return cleaned

    def clean_public_jwk(self):
        try:
            jwk = json.loads(self.cleaned_data["public_jwk"])
        except ValueError as exc:
            raise forms.ValidationError("Not JSON.") from exc
        if not isinstance(jwk, dict) or "d" in jwk or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise forms.ValidationError("Expected a public Ed25519 JWK (kty OKP, crv Ed25519, no 'd').")
        if not isinstance(jwk.get("kid"), str) or not isinstance(jwk.get("x"), str):
            raise forms.ValidationError("The JWK needs 'kid' and 'x'.")
        taken = SigningKey.objects.filter(kid=jwk["kid"]).exclude(node=self.data.get("node_id", "")).exists()
        if taken:
            raise forms.ValidationError("This kid belongs to another node.")
        return jwk


@admin.register(Node)
class NodeAdmin(ReadOnlyStaffAdmin):
    list_display = (
        "node_id",
        "is_active",
        "last_sync_at",
        "acked_seq",
        "max_seq",
        "events_held",
        "gap_ranges",
        "reconciliation_link",
    )
    search_fields = ("node_id",)
    readonly_fields = (
        "node_id",
        "is_active",
        "registered_at",
        "shop",
        "venue",
        "venue_taken_at",
        "catalog_pulled_at",
        "last_sync_at",
        "acked_seq",
        "max_seq",
        "events_held",
        "totals",
        "totals_seq",
        "totals_at",
        "gap_ranges",
        "reconciliation_link",
    )

    @admin.display(description="missing ranges")
    def gap_ranges(self, obj):
        return ranges_text(node_gaps(obj, limit=20)) or "none"

    @admin.display(description="reconciliation")
    def reconciliation_link(self, obj):
        url = reverse("admin:nodes_node_reconciliation", args=[obj.pk])
        return format_html('<a href="{}">Reconcile</a>', url)

    # -- reconciliation (docs/edge.md, "Reconciliation") --------------------------------------

    def get_urls(self):
        overview = self.admin_site.admin_view(self.reconciliation_overview)
        one = self.admin_site.admin_view(self.reconciliation_view)
        return [
            path("reconciliation/", overview, name="nodes_reconciliation"),
            path("<int:pk>/reconciliation/", one, name="nodes_node_reconciliation"),
            *super().get_urls(),
        ]

    def reconciliation_overview(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        nodes = []
        # Each node's full reconciliation (a dozen queries): a cloud has a handful of venues.
        for node in Node.objects.select_related("shop", "venue").order_by("node_id"):
            rec = node_reconciliation(node)
            nodes.append(
                {
                    **rec,
                    "id": node.node_id,
                    "shop": node.shop,
                    "venue": node.venue,
                    "last_sync_ago": ago_text(rec["last_sync_at"]),
                    "attention": attention(rec),
                    "pending": rec["pending_captures"]["orders"],
                    "url": reverse("admin:nodes_node_reconciliation", args=[node.pk]),
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Reconciliation",
            "nodes": nodes,
        }
        return TemplateResponse(request, "nodes/admin/reconciliation_overview.html", context)

    def reconciliation_view(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        node = Node.objects.select_related("shop", "venue").filter(pk=pk).first()
        if node is None:
            raise Http404("No such node.")
        rec = node_reconciliation(node)
        acked_at, newest_at = lag_window(node)
        days = [
            {
                **day,
                "edge_text": totals_text(day["edge"]),
                "cloud_text": totals_text(day["cloud"]),
                "difference": "" if day["match"] else difference_text(day["edge"], day["cloud"]),
            }
            for day in days_compared(node)
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": node,
            "title": f"Reconciliation: {node.node_id}",
            "rec": rec,
            "attention": attention(rec),
            "lag_text": duration_text(rec["lag_seconds"]),
            "last_sync_ago": ago_text(rec["last_sync_at"]),
            "acked_at": acked_at,
            "newest_at": newest_at,
            "edge_text": totals_text(rec["edge"]),
            "cloud_text": totals_text(rec["cloud"]),
            "difference": "" if rec["match"] else difference_text(rec["edge"], rec["cloud"]),
            "gaps_text": ranges_text(rec["gaps"]),
            "days": days,
            "mismatched_days": sum(1 for day in days if not day["match"]),
            "pending_text": ", ".join(f"{c} {a}" for c, a in rec["pending_captures"]["amount"].items()),
        }
        return TemplateResponse(request, "nodes/admin/reconciliation.html", context)

    actions = ("deactivate", "reactivate")

    @admin.action(description="Refuse the selected nodes' batches (deactivate)")
    def deactivate(self, request, queryset):
        changed = sum(node_set_active(node_id=node.node_id, active=False) for node in queryset)
        self.message_user(request, f"{changed} node(s) deactivated.")

    @admin.action(description="Accept the selected nodes' batches again (reactivate)")
    def reactivate(self, request, queryset):
        changed = sum(node_set_active(node_id=node.node_id, active=True) for node in queryset)
        self.message_user(request, f"{changed} node(s) reactivated.")

    def has_add_permission(self, request):
        return is_staff(request.user)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = NodeAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ("node_id", "public_jwk", "shop", "venue") if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        shop, venue = form.cleaned_data.get("shop"), form.cleaned_data.get("venue")
        node, _created = node_register(
            node_id=form.cleaned_data["node_id"],
            public_jwk=form.cleaned_data["public_jwk"],
            shop_slug=shop.slug if shop else None,
            venue_name=venue.name if venue else None,
        )
        obj.pk, obj.registered_at = node.pk, node.registered_at


@admin.register(NodeEvent)
class NodeEventAdmin(ReadOnlyStaffAdmin):
    list_display = ("node", "seq", "type", "outcome", "created_at", "received_at")
    list_filter = ("node", "outcome", "type")
    fields = ("node", "seq", "uuid", "type", "payload", "refs", "created_at", "received_at", "outcome", "detail")
    readonly_fields = fields


@admin.register(NodeOrder)
class NodeOrderAdmin(ReadOnlyStaffAdmin):
    list_display = ("node", "edge_order", "order", "doc_seq", "updated_at")
    list_filter = ("node",)
    fields = ("node", "edge_order", "order", "doc_seq", "updated_at")
    readonly_fields = fields


@admin.register(NodeStock)
class NodeStockAdmin(ReadOnlyStaffAdmin):
    list_display = ("node", "shop", "sku", "location", "available", "version", "seq", "updated_at")
    list_filter = ("node",)
    fields = ("node", "shop", "sku", "location", "available", "version", "seq", "stock_level", "updated_at")
    readonly_fields = fields


@admin.register(NodeAllocation)
class NodeAllocationAdmin(ReadOnlyStaffAdmin):
    list_display = ("node", "location", "sku", "units", "taken_at")
    list_filter = ("node",)
    fields = ("node", "location", "sku", "units", "taken_at")
    readonly_fields = fields


@admin.register(CatalogState)
class CatalogStateAdmin(ReadOnlyStaffAdmin):
    list_display = ("node", "last_success_at", "failures", "next_attempt_at", "allocation_applied_at", "last_error")
    fields = (
        "node",
        "allocation_of",
        "allocation_applied_at",
        "pulls",
        "last_changes",
        "failures",
        "next_attempt_at",
        "last_attempt_at",
        "last_success_at",
        "last_error",
    )
    readonly_fields = fields


@admin.register(RelayState)
class RelayStateAdmin(ReadOnlyStaffAdmin):
    list_display = ("node", "acked_seq", "failures", "next_attempt_at", "last_success_at", "last_error")
    fields = (
        "node",
        "acked_seq",
        "failures",
        "next_attempt_at",
        "last_attempt_at",
        "last_success_at",
        "last_error",
        "batches_sent",
        "events_sent",
    )
    readonly_fields = fields


admin.site.register_page(
    app_label="nodes",
    name="Reconciliation",
    url_name="nodes_reconciliation",
    allowed=lambda request: is_staff(request.user),
)
