from django.contrib import admin

from creatorcommerce.admin import ShopScopedReadOnlyAdmin

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(ShopScopedReadOnlyAdmin):
    """Read-only: staff see every entry, a creator their own shop's. Nobody adds, changes
    or deletes entries here (the model refuses it too)."""

    list_display = ("at", "action", "object", "short_reason", "actor_label")
    list_filter = ("action", "object_type")
    search_fields = ("object_id", "actor_label", "reason")
    date_hierarchy = "at"
    fields = ("at", "action", "object_type", "object_id", "actor_email", "actor_label", "shop", "reason", "details")
    readonly_fields = fields
    actions = None

    @admin.display(description="Object", ordering="object_id")
    def object(self, entry):
        return f"{entry.object_type} #{entry.object_id}"

    @admin.display(description="Actor")
    def actor_email(self, entry):
        # Text, not the user's admin page: a creator may not open users (that page is 403).
        return entry.actor.email if entry.actor_id else "(no account: system, or deleted)"

    @admin.display(description="Reason")
    def short_reason(self, entry):
        return entry.reason if len(entry.reason) <= 40 else entry.reason[:39] + "…"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("shop", "actor")
