"""Scheduling a drop: a creator builds a stream with its pins, deals and annotations here.

Every change that viewers see goes through the streams services (so it becomes an event):
pins are added and removed with pin_add / pin_remove, the stream is started and ended
with the actions; deals are scheduled here and opened and closed by the scheduler (or by
hand in the control room).
"""

from django.contrib import admin, messages
from django.db import transaction

from creatorcommerce.admin import ShopScopedAdmin, ShopScopedInline

from .models import Annotation, FlashDeal, Pin, Stream
from .services import pin_add, pin_remove, stream_end, stream_start


class PinInline(ShopScopedInline):
    model = Pin
    fields = ("sku", "position")
    ordering = ("position",)


class FlashDealInline(ShopScopedInline):
    model = FlashDeal
    fields = ("sku", "location", "price", "quantity", "per_buyer_limit", "opens_at", "closes_at", "status", "remaining")
    readonly_fields = ("status", "remaining")


class AnnotationInline(ShopScopedInline):
    model = Annotation
    fields = ("offset_seconds", "text", "sku")


@admin.register(Stream)
class StreamAdmin(ShopScopedAdmin):
    list_display = ("title", "shop", "status", "starts_at", "ends_at")
    list_filter = ("status",)
    search_fields = ("title",)
    date_hierarchy = "starts_at"
    inlines = [PinInline, FlashDealInline, AnnotationInline]
    readonly_fields = ("status", "started_at", "ended_at", "media_path", "control_room")
    fields = (
        "shop",
        "title",
        "description",
        "starts_at",
        "ends_at",
        "hls_url",
        "poster_url",
        "ingest_token",
        "media_path",
        "status",
        "started_at",
        "ended_at",
        "control_room",
    )
    actions = ["start_now", "end_now"]

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        # Staff pick the shop; a creator's streams are always their own shop's.
        return fields if request.user.is_staff else [f for f in fields if f != "shop"]

    @admin.display(description="Publish to (media server path)")
    def media_path(self, obj):
        return obj.media_path if obj.pk else "(saved first)"

    @admin.display(description="Control room")
    def control_room(self, obj):
        from django.utils.html import format_html

        return format_html('<a href="/streams/{}/control/">Open the control room</a>', obj.pk) if obj.pk else "-"

    def save_formset(self, request, form, formset, change):
        if formset.model is not Pin:
            return super().save_formset(request, form, formset, change)
        stream = form.instance
        with transaction.atomic():
            for pin_form in formset.forms:
                if not pin_form.has_changed() and pin_form not in formset.deleted_forms:
                    continue
                pin = pin_form.instance
                if pin_form in formset.deleted_forms:
                    if pin.pk:
                        pin_remove(stream=stream, sku=pin.sku)
                elif pin.pk is None:
                    pin_add(
                        stream=stream, sku=pin_form.cleaned_data["sku"], position=pin_form.cleaned_data.get("position")
                    )
                else:
                    Pin.objects.filter(pk=pin.pk).update(position=pin_form.cleaned_data.get("position") or 0)
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @admin.action(description="Start the selected streams now")
    def start_now(self, request, queryset):
        started = 0
        for stream in queryset.filter(status=Stream.Status.SCHEDULED):
            stream_start(stream=stream)
            started += 1
        self.message_user(request, f"{started} stream(s) started.", messages.SUCCESS)

    @admin.action(description="End the selected streams now")
    def end_now(self, request, queryset):
        ended = 0
        for stream in queryset.exclude(status=Stream.Status.ENDED):
            stream_end(stream=stream)
            ended += 1
        self.message_user(request, f"{ended} stream(s) ended.", messages.SUCCESS)
