from django.contrib import admin

from .models import HandlerRun, OutboxEvent


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    """Read-only view of the durable event log, for staff."""

    list_display = ("id", "type", "node", "created_at")
    list_filter = ("type", "node")
    search_fields = ("uuid", "type")
    readonly_fields = ("uuid", "type", "payload", "groups", "node", "created_at")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff


@admin.register(HandlerRun)
class HandlerRunAdmin(OutboxEventAdmin):
    list_display = ("id", "handler", "event", "processed_at")
    list_filter = ("handler",)
    search_fields = ("handler",)
    readonly_fields = ("event", "handler", "processed_at")
    date_hierarchy = "processed_at"
