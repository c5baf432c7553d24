from django.contrib import admin

from creatorcommerce.admin import is_staff, scoped_queryset, shop_of, user_shop

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: staff see every entry, a creator their own shop's. Nobody adds, changes
    or deletes entries here (the model refuses it too)."""

    list_display = ("at", "action", "object", "short_reason", "actor_label")
    list_filter = ("action", "object_type")
    search_fields = ("object_id", "actor_label", "reason")
    date_hierarchy = "at"
    fields = ("at", "action", "object_type", "object_id", "actor", "actor_label", "shop", "reason", "details")
    readonly_fields = fields
    actions = None

    @admin.display(description="Object", ordering="object_id")
    def object(self, entry):
        return f"{entry.object_type} #{entry.object_id}"

    @admin.display(description="Reason")
    def short_reason(self, entry):
        return entry.reason if len(entry.reason) <= 40 else entry.reason[:39] + "…"

    def _allowed(self, request, obj=None) -> bool:
        if is_staff(request.user):
            return True
        shop = user_shop(request.user)
        return shop is not None and (obj is None or shop_of(obj) == shop)

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("shop")
        if is_staff(request.user):
            return qs
        return scoped_queryset(self.model, user_shop(request.user), qs)
