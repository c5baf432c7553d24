"""Reminders and their deliveries, for staff to look at (docs/calendars.md, "Sending"):
read-only, written only by the services. Creators see no one's reminders here (their
audience shows as counts: the heatmap)."""

from django.contrib import admin

from creatorcommerce.admin import ReadOnlyStaffAdmin

from .models import Delivery, Reminder


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyStaffAdmin):
    list_display = ("pk", "user", "stream", "status", "starts_at", "deliver_at", "sent_at")
    list_filter = ("status",)
    list_select_related = ("user", "stream")
    search_fields = ("user__email", "stream__title")
    date_hierarchy = "deliver_at"


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyStaffAdmin):
    list_display = ("pk", "user", "stream", "channel", "status", "attempts", "claimed_at", "sent_at")
    list_filter = ("channel", "status")
    list_select_related = ("user", "stream")
    search_fields = ("user__email",)
