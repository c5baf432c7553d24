"""The venues' admin (docs/geofences.md, "Admin map"): a creator's own venues only, the fence
drawn or pasted on a map, opening hours inline. Every write goes through the services
(``venue_create``/``venue_update``/``venue_hours_set``/``venue_delete``), so each bumps the
venue's version and emits its event."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.db.models import Count, Q

from apps.catalog.models import Location
from creatorcommerce.admin import (
    ServiceCheckedForm,
    ShopScopedAdmin,
    ShopScopedInline,
    ShopScopedReadOnlyAdmin,
    StaffShopColumn,
    is_staff,
    user_shop,
)

from .coupons import GEO_OFFER_FIELDS, geo_offer_errors, geo_offer_save
from .models import Coupon, GeoOffer, Venue, VenueHours
from .services import _VENUE_FIELDS, venue_create, venue_delete, venue_hours_set, venue_update
from .widgets import FenceMapWidget


class FenceField(forms.JSONField):
    """The GeoJSON textarea: a JSON value; whether it is a valid fence is the model's
    ``clean`` (the error lands on this field)."""

    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return json.dumps(value) if value is not None else ""


class VenueForm(forms.ModelForm):
    new_location_name = forms.CharField(
        max_length=120,
        required=False,
        label="New venue location",
        help_text="Name of a new location of kind 'venue' (or pick an existing one above).",
    )
    new_location_address = forms.CharField(max_length=255, required=False, label="Address")
    fence = FenceField(required=False, widget=FenceMapWidget, help_text="")

    class Meta:
        model = Venue
        fields = ("location", *_VENUE_FIELDS)

    def __init__(self, *args, shop=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.creator_shop = shop  # None: staff, who pick an existing location
        if "location" in self.fields:
            locations = Location.objects.filter(kind=Location.Kind.VENUE, venue__isnull=True)
            if shop is not None:
                locations = locations.filter(shop=shop)
            self.fields["location"].queryset = locations
            self.fields["location"].required = False
            self.fields["location"].help_text = "A location of kind 'venue' that has no fence yet."

    def clean(self):
        cleaned = super().clean()
        if "location" in self.fields and not cleaned.get("location"):
            if self.creator_shop is None:
                self.add_error("location", "Pick the venue location (staff: the location names the shop).")
            elif not cleaned.get("new_location_name"):
                self.add_error("new_location_name", "Pick a venue location or name a new one.")
        return cleaned


class VenueHoursForm(forms.ModelForm):
    def clean(self):
        cleaned = super().clean()
        opens, closes = cleaned.get("opens"), cleaned.get("closes")
        if opens is not None and opens == closes:
            # Said here in words (the model's check constraint would only be named).
            self.add_error("closes", "Closing must differ from opening (closing before opening runs past midnight).")
        return cleaned


class VenueHoursInline(ShopScopedInline):
    model = VenueHours
    form = VenueHoursForm
    extra = 1
    fields = ("weekday", "opens", "closes")
    verbose_name_plural = (
        "Opening hours (in the venue's time zone; closing before opening runs past midnight; none: always open)"
    )


@admin.register(Venue)
class VenueAdmin(StaffShopColumn, ShopScopedAdmin):
    form = VenueForm
    inlines = [VenueHoursInline]
    list_display = ("__str__", "fence_kind", "time_zone", "dwell_seconds", "is_active", "version")
    list_filter = ("is_active", "fence_kind")
    list_select_related = ("location__shop",)
    readonly_fields = ("version",)
    shop_path = "location__shop"

    def get_fieldsets(self, request, obj=None):
        where = ("location", "new_location_name", "new_location_address") if obj is None else ()
        return [
            (None, {"fields": (*where, "is_active", "time_zone", "dwell_seconds")}),
            ("Fence", {"fields": ("fence_kind", "fence", ("center_lon", "center_lat", "radius_m"))}),
            ("Announcement", {"fields": ("announcement", "announce_radius_m", "event_starts_at")}),
            ("Version", {"fields": ("version",)}),
        ]

    def get_changeform_initial_data(self, request):
        # A creator's new venue starts in their own time zone (they are most likely there),
        # not the model's UTC.
        initial = super().get_changeform_initial_data(request)
        if not is_staff(request.user) and getattr(request.user, "time_zone", ""):
            initial.setdefault("time_zone", request.user.time_zone)
        return initial

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        shop = None if is_staff(request.user) else user_shop(request.user)

        class ScopedVenueForm(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, shop=shop, **kw)

        return ScopedVenueForm

    def save_model(self, request, obj, form, change):
        fields = {key: form.cleaned_data[key] for key in _VENUE_FIELDS if key in form.cleaned_data}
        if change:
            venue_update(venue=obj, **fields)
            return
        location = form.cleaned_data.get("location")
        shop = location.shop if location is not None else user_shop(request.user)
        venue = venue_create(
            shop=shop,
            location=location,
            name=form.cleaned_data.get("new_location_name") or None,
            address=form.cleaned_data.get("new_location_address", ""),
            **fields,
        )
        obj.location = venue.location
        obj.version = venue.version
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        for formset in formsets:
            if formset.model is not VenueHours:
                continue
            # The admin's change message reads these; the rows are written by the service.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            if not formset.has_changed():
                continue
            hours = [
                (f.cleaned_data["weekday"], f.cleaned_data["opens"], f.cleaned_data["closes"])
                for f in formset.forms
                if f.cleaned_data and not f.cleaned_data.get("DELETE")
            ]
            venue_hours_set(venue=form.instance, hours=hours)

    def delete_model(self, request, obj):
        venue_delete(venue=obj)

    def delete_queryset(self, request, queryset):
        for venue in queryset:
            venue_delete(venue=venue)


# -- geo offers and coupons (docs/geofences.md) ----------------------------------------


class GeoOfferForm(ServiceCheckedForm):
    service_fields = GEO_OFFER_FIELDS

    class Meta:
        model = GeoOffer
        fields = ("shop", *GEO_OFFER_FIELDS)

    def service_errors(self, *, shop, fields):
        return geo_offer_errors(shop=shop, fields=fields)


@admin.register(GeoOffer)
class GeoOfferAdmin(StaffShopColumn, ShopScopedAdmin):
    """Geo offers of the creator's venues; venue and SKU choices are their own. Written
    through ``geo_offer_save``; the constraints (end value above start, percent over 100)
    are field errors."""

    form = GeoOfferForm
    list_display = (
        "label",
        "venue",
        "trigger",
        "kind",
        "start_value",
        "end_value",
        "issued",
        "redeemed",
        "cap",
        "redemptions_left",
        "starts_at",
        "ends_at",
        "is_active",
    )
    list_filter = ("is_active", "trigger", "kind")
    list_select_related = ("shop", "venue__location")
    readonly_fields = ("redemptions_left",)
    exclude = ()

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                issued_count=Count("coupons"),
                redeemed_count=Count("coupons", filter=Q(coupons__redeemed_at__isnull=False)),
            )
        )

    @admin.display(description="Issued", ordering="issued_count")
    def issued(self, obj):
        return obj.issued_count

    @admin.display(description="Redeemed", ordering="redeemed_count")
    def redeemed(self, obj):
        return obj.redeemed_count

    def save_model(self, request, obj, form, change):
        self.assign_shop(request, obj)
        fields = {name: form.cleaned_data[name] for name in GEO_OFFER_FIELDS if name in form.cleaned_data}
        saved = geo_offer_save(shop=obj.shop, offer=obj if change else None, **fields)
        obj.pk, obj.redemptions_left = saved.pk, saved.redemptions_left


@admin.register(Coupon)
class CouponAdmin(StaffShopColumn, ShopScopedReadOnlyAdmin):
    """The shop's coupons, read only (staff see all)."""

    list_display = ("code", "offer", "user", "issued_at", "expires_at", "redeemed_at", "order")
    # Only offers that have coupons in this (shop-scoped) list: a plain related filter would
    # list every shop's offers to a creator.
    list_filter = (("offer", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("code",)
    list_select_related = ("offer__shop", "user", "order")
    shop_path = "offer__shop"
