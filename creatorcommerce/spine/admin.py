from django.contrib import admin

from creatorcommerce.admin import ReadOnlyStaffAdmin

from .models import HandlerRun, OutboxEvent


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyStaffAdmin):
    """Read-only view of the durable event log, for staff."""

    list_display = ("id", "type", "node", "created_at", "request_id")
    list_filter = ("type", "node")
    # A request id finds every event one request (a buy) recorded (docs/operations.md, "Logs").
    search_fields = ("uuid", "type", "=request_id")
    readonly_fields = ("uuid", "type", "payload", "groups", "node", "created_at", "request_id")
    date_hierarchy = "created_at"


@admin.register(HandlerRun)
class HandlerRunAdmin(OutboxEventAdmin):
    list_display = ("id", "handler", "event", "processed_at")
    list_filter = ("handler",)
    search_fields = ("handler",)
    readonly_fields = ("event", "handler", "processed_at")
    date_hierarchy = "processed_at"
