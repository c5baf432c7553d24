"""Cues for creators to look at (their shop's only), read-only: written by the services
(docs/devices.md)."""

from django.contrib import admin

from creatorcommerce.admin import ShopScopedReadOnlyAdmin

from .models import Cue


@admin.register(Cue)
class CueAdmin(ShopScopedReadOnlyAdmin):
    list_display = ("pk", "device", "kind", "event_type", "status", "issued_at", "latency_ms", "detail")
    list_filter = ("status", "kind", "event_type")
    list_select_related = ("device",)
