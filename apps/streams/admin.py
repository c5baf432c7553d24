"""Scheduling a drop: a creator builds a stream with its pins, deals and annotations here.

Every write goes through the streams services, so each is an event on the spine: the stream
is scheduled, edited and cancelled with stream_create / stream_update / stream_cancel (the
services the creators' API calls; their rules are the form's errors), pins are added, moved and
removed with pin_add / pins_reorder / pin_remove, deals are scheduled, edited and deleted
with deal_schedule / deal_terms_set / deal_delete (and opened and closed by the scheduler,
or by hand in the control room), the stream is started and ended with the actions.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import formats, timezone
from django.utils.functional import lazy
from django.utils.html import format_html

from creatorcommerce.admin import ServiceCheckedForm, ShopScopedAdmin, ShopScopedInline

from .exceptions import (
    DealHasOrders,
    DealIsOpen,
    StreamHasOpenDeal,
    StreamHasOrders,
    StreamIsCancelled,
    StreamIsEnded,
    StreamIsLive,
)
from .models import Annotation, FlashDeal, Pin, Stream
from .panels import scheduling_panels
from .services import (
    ANNOTATION_FIELDS,
    DEAL_TERMS,
    STREAM_FIELDS,
    annotation_add,
    annotation_delete,
    annotation_update,
    deal_delete,
    deal_schedule,
    deal_terms_set,
    deals_with_orders,
    pin_add,
    pin_remove,
    pins_reorder,
    stream_cancel,
    stream_create,
    stream_delete,
    stream_end,
    stream_problems,
    stream_start,
    stream_update,
)


def _in_zone(label: str) -> str:
    """``label (Europe/Berlin)``, evaluated per request: the admin shows times in the active
    time zone (the creator's, when one is set for them), and says which."""
    return lazy(lambda: f"{label} ({timezone.get_current_timezone_name()})", str)()


class _LocalTimes:
    """Date-time inputs say which zone they are typed in."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if isinstance(db_field, models.DateTimeField) and field is not None:
            zone = timezone.get_current_timezone_name()
            field.help_text = f"{field.help_text} In your time zone, {zone}.".strip()
        return field


class _LockedWhenCancelled:
    """A cancelled drop is kept as it was: its rows are shown, not edited (the parent's
    admin passes the stream as ``obj``)."""

    def _cancelled(self, obj) -> bool:
        return isinstance(obj, Stream) and obj.status == Stream.Status.CANCELLED

    def has_add_permission(self, request, obj=None):
        return not self._cancelled(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not self._cancelled(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not self._cancelled(obj) and super().has_delete_permission(request, obj)


class PinForm(forms.ModelForm):
    """A pin row's SKU is fixed once pinned (pins are keyed by SKU): to show another SKU,
    remove the pin and add one."""

    class Meta:
        model = Pin
        fields = ("sku", "position")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and "sku" in self.fields:
            self.fields["sku"].disabled = True
            self.fields["sku"].help_text = "Pinned; remove the pin to show another SKU."


class PinInline(_LockedWhenCancelled, ShopScopedInline):
    model = Pin
    form = PinForm
    fields = ("sku", "position")
    ordering = ("position",)


class FlashDealInlineFormSet(forms.BaseInlineFormSet):
    """The deals of one stream. An open deal holds units taken out of its location's stock:
    deleting it would lose them (and leave deal_close nothing to give them back to), so it
    must be closed first. Order lines keep their deal (PROTECT): a deal with orders stays."""

    def clean(self):
        # Before super().clean(): its unique checks validate every form, and the admin's
        # inline form then reports protected objects in its own words.
        ids = [
            form.instance.pk
            for form in self.forms
            if self.can_delete and self._should_delete_form(form) and form.instance.pk is not None
        ]
        if ids:
            self._check_deletions(ids)
        super().clean()

    def _check_deletions(self, ids):
        with_orders = deals_with_orders(deal_ids=ids)
        problems = []
        for deal in FlashDeal.objects.filter(pk__in=ids).select_related("sku").order_by("pk"):
            if deal.status == FlashDeal.Status.OPEN:
                problems.append(f"The deal on {deal.sku} is open. Close the deal first, then delete it.")
            elif deal.pk in with_orders:
                problems.append(f"The deal on {deal.sku} has orders, so it cannot be deleted.")
        if problems:
            raise ValidationError(problems)


class FlashDealInline(_LockedWhenCancelled, _LocalTimes, ShopScopedInline):
    """Stacked, a few fields to a line: nine columns (two of them split date and time inputs)
    made the stream's page scroll sideways at 1280 px."""

    model = FlashDeal
    formset = FlashDealInlineFormSet
    template = "admin/edit_inline/stacked.html"
    fields = (("sku", "location"), ("price", "quantity", "per_buyer_limit"), ("opens_at", "closes_at"), "units")
    readonly_fields = ("units",)

    @admin.display(description="Units")
    def units(self, deal):
        """What the deal holds now: a scheduled deal has nothing set aside yet (its
        ``remaining`` is 0 until it opens), so say what it will hold and when."""
        if deal.pk is None:
            return "-"
        if deal.status == FlashDeal.Status.SCHEDULED:
            opens = timezone.localtime(deal.opens_at)
            return format_html(
                "Scheduled: {} units set aside when it opens, {} ({})",
                deal.quantity,
                opens.strftime("%a %d %b, %H:%M"),
                timezone.get_current_timezone_name(),
            )
        if deal.status == FlashDeal.Status.OPEN:
            return format_html("Open: {} of {} left", deal.remaining, deal.quantity)
        return "Closed"


class AnnotationInline(_LockedWhenCancelled, ShopScopedInline):
    model = Annotation
    fields = ("offset_seconds", "text", "sku")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "text" and field is not None:
            field.widget.attrs["size"] = 40  # 280 characters wide pushed the page sideways
        return field


class StreamForm(ServiceCheckedForm):
    """The stream's own fields, checked by the rules of stream_create / stream_update
    (``stream_problems``) on what the form changes: the admin shows what the service would
    refuse (a cancelled drop, a live drop's start, an end before the start) on its field."""

    service_fields = STREAM_FIELDS

    class Meta:
        model = Stream
        fields = ("shop", *STREAM_FIELDS)

    def service_errors(self, *, shop, fields):
        stream = self.instance if self.instance.pk is not None else None
        changes = {name: value for name, value in fields.items() if stream is None or name in self.changed_data}
        errors: dict[str, list[str]] = {}
        for field, error in stream_problems(stream=stream, changes=changes):
            errors.setdefault(field or "__all__", []).append(error.message)
        return errors


@admin.register(Stream)
class StreamAdmin(_LocalTimes, ShopScopedAdmin):
    form = StreamForm
    list_display = ("title", "shop", "status", "starts", "ends")
    list_filter = ("status",)
    search_fields = ("title",)
    date_hierarchy = "starts_at"
    inlines = [PinInline, FlashDealInline, AnnotationInline]
    readonly_fields = ("status", "started", "ended", "cancelled", "media_path", "control_room")
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
        "started",
        "ended",
        "cancelled",
        "control_room",
    )
    actions = ["start_now", "end_now", "cancel_drops"]

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        # Staff pick the shop; a creator's streams are always their own shop's.
        return fields if request.user.is_staff else [f for f in fields if f != "shop"]

    @admin.display(description=_in_zone("Starts"), ordering="starts_at")
    def starts(self, obj):
        return obj.starts_at

    @admin.display(description=_in_zone("Ends"), ordering="ends_at")
    def ends(self, obj):
        return obj.ends_at

    @admin.display(description=_in_zone("Started at"))
    def started(self, obj):
        # A read-only field's value is shown as its str(): localise it here.
        return formats.localize(timezone.localtime(obj.started_at)) if obj.started_at else "-"

    @admin.display(description=_in_zone("Ended at"))
    def ended(self, obj):
        return formats.localize(timezone.localtime(obj.ended_at)) if obj.ended_at else "-"

    @admin.display(description=_in_zone("Cancelled at"))
    def cancelled(self, obj):
        return formats.localize(timezone.localtime(obj.cancelled_at)) if obj.cancelled_at else "-"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # What apps above streams show while a drop is scheduled (apps/streams/panels.py):
        # the audience heatmap of the calendars app.
        shop = obj.shop if obj is not None else getattr(request.user, "shop", None) if request.user.is_creator else None
        context["scheduling_panels"] = scheduling_panels(request=request, shop=shop, stream=obj)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def has_change_permission(self, request, obj=None):
        # A cancelled drop is shown as it was, read-only (docs/streams.md).
        if obj is not None and obj.status == Stream.Status.CANCELLED:
            return False
        return super().has_change_permission(request, obj)

    @admin.display(description="Publish to (media server path)")
    def media_path(self, obj):
        return obj.media_path if obj.pk else "(saved first)"

    @admin.display(description="Control room")
    def control_room(self, obj):
        return format_html('<a href="/streams/{}/control/">Open the control room</a>', obj.pk) if obj.pk else "-"

    def get_deleted_objects(self, objs, request):
        # Deleting a stream deletes its deals: an open one would take its units with it, and
        # orders give units back to the deal they came from (stream_delete refuses both).
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        deals = list(FlashDeal.objects.filter(stream__in=objs).select_related("sku"))
        with_orders = deals_with_orders(deal_ids=[deal.pk for deal in deals])
        protected = [
            *protected,
            *(f"Open flash deal on {d.sku} (close it first)" for d in deals if d.status == FlashDeal.Status.OPEN),
            *(f"Flash deal on {d.sku}, which has orders" for d in deals if d.pk in with_orders),
        ]
        return deleted, model_count, perms_needed, protected

    def delete_model(self, request, obj):
        self._delete(request, obj)

    def delete_queryset(self, request, queryset):
        for stream in queryset:
            self._delete(request, stream)

    def _delete(self, request, stream):
        # get_deleted_objects refused these already; a deal opened or sold since is told here.
        try:
            stream_delete(stream=stream)
        except (StreamHasOpenDeal, StreamHasOrders) as exc:
            messages.error(request, f"{stream} was not deleted: {exc.message}")

    def save_model(self, request, obj, form, change):
        self.assign_shop(request, obj)
        if change:
            changes = {name: getattr(obj, name) for name in form.changed_data if name in (*STREAM_FIELDS, "shop")}
            try:
                stream_update(stream=obj, changes=changes)
            except (StreamIsLive, StreamIsEnded, StreamIsCancelled) as exc:
                # The form was valid for the drop as it was a moment ago; the scheduler (or
                # another tab) started, ended or cancelled it since.
                messages.error(request, f"{obj} was not changed: {exc.message}")
        else:
            fields = {name: getattr(obj, name) for name in STREAM_FIELDS}
            obj.pk = stream_create(shop=obj.shop, **fields).pk

    def save_formset(self, request, form, formset, change):
        if formset.model is FlashDeal:
            return self._save_deals(request, form.instance, formset)
        if formset.model is Annotation:
            return self._save_annotations(form.instance, formset)
        if formset.model is not Pin:
            return super().save_formset(request, form, formset, change)
        stream = form.instance
        positions = {}
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
                    positions[pin.sku_id] = pin_form.cleaned_data.get("position") or 0
            pins_reorder(stream=stream, positions=positions)
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def _save_annotations(self, stream, formset):
        formset.save(commit=False)
        with transaction.atomic():
            for annotation in formset.deleted_objects:
                annotation_delete(annotation=annotation)
            for annotation, changed in formset.changed_objects:
                annotation_update(annotation=annotation, changed=changed)
            formset.new_objects = [
                annotation_add(stream=stream, **{name: getattr(a, name) for name in ANNOTATION_FIELDS})
                for a in formset.new_objects
            ]

    def _save_deals(self, request, stream, formset):
        """Every deal row through the streams services: never ``status``, ``remaining`` or
        ``version`` from the form (see deal_terms_set), each change an event."""
        formset.save(commit=False)
        saved_changes, deleted, new = [], [], []
        for deal, changed in formset.changed_objects:
            result = deal_terms_set(deal=deal, changed=changed)
            if result.refused:
                # The form was valid for the deal as it was a moment ago; the scheduler has
                # opened or closed it since.
                refused = ", ".join(result.refused)
                messages.warning(
                    request, f"The deal on {result.deal.sku} is {result.deal.status} now; not saved: {refused}."
                )
            if result.saved:
                saved_changes.append((result.deal, result.saved))
        for deal in formset.deleted_objects:
            try:
                if deal_delete(deal=deal):
                    deleted.append(deal)
            except DealIsOpen:  # opened since the form was checked
                messages.error(request, f"The deal on {deal.sku} is open. Close the deal first, then delete it.")
            except DealHasOrders:
                messages.error(request, f"The deal on {deal.sku} has orders, so it cannot be deleted.")
        for deal in formset.new_objects:
            terms = {name: getattr(deal, name) for name in DEAL_TERMS}
            new.append(deal_schedule(stream=stream, **terms))
        formset.new_objects, formset.changed_objects, formset.deleted_objects = new, saved_changes, deleted

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
        for stream in queryset.filter(status__in=[Stream.Status.SCHEDULED, Stream.Status.LIVE]):
            stream_end(stream=stream)
            ended += 1
        self.message_user(request, f"{ended} stream(s) ended.", messages.SUCCESS)

    @admin.action(description="Cancel the selected drops (scheduled ones only)")
    def cancel_drops(self, request, queryset):
        """stream_cancel, as ``POST /api/v1/streams/{id}/cancel`` does: a live drop is ended
        instead, an ended one stays ended."""
        cancelled, refused = 0, []
        for stream in queryset.exclude(status=Stream.Status.CANCELLED):
            try:
                stream_cancel(stream=stream)
                cancelled += 1
            except (StreamIsLive, StreamIsEnded) as exc:
                refused.append(f"{stream}: {exc.message}")
        self.message_user(request, f"{cancelled} drop(s) cancelled.", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.ERROR)
