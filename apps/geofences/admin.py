"""The geofences admin, scoped to the creator's shop (docs/geofences.md)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count, Q

from creatorcommerce.admin import ShopScopedAdmin, ShopScopedReadOnlyAdmin, is_staff, user_shop

from .coupons import GEO_OFFER_FIELDS, geo_offer_errors, geo_offer_save
from .models import Coupon, GeoOffer

# -- geo offers and coupons (docs/geofences-coupons.md) ----------------------------------------


class GeoOfferForm(forms.ModelForm):
    class Meta:
        model = GeoOffer
        fields = ("shop", *GEO_OFFER_FIELDS)

    assigned_shop = None  # the creator's shop (set per request); staff choose one

    def clean(self):
        cleaned = super().clean()
        shop = self.assigned_shop or cleaned.get("shop")
        if shop is not None:
            for field, messages in geo_offer_errors(shop=shop, fields=cleaned).items():
                for message in messages:
                    self.add_error(field if field in self.fields else None, message)
        return cleaned


@admin.register(GeoOffer)
class GeoOfferAdmin(ShopScopedAdmin):
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

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if not is_staff(request.user):
            form = type(form.__name__, (form,), {"assigned_shop": user_shop(request.user)})
        return form

    def save_model(self, request, obj, form, change):
        self.assign_shop(request, obj)
        fields = {name: form.cleaned_data[name] for name in GEO_OFFER_FIELDS if name in form.cleaned_data}
        saved = geo_offer_save(shop=obj.shop, offer=obj if change else None, **fields)
        obj.pk, obj.redemptions_left = saved.pk, saved.redemptions_left


@admin.register(Coupon)
class CouponAdmin(ShopScopedReadOnlyAdmin):
    """The shop's coupons, read only (staff see all)."""

    list_display = ("code", "offer", "user", "issued_at", "expires_at", "redeemed_at", "order")
    list_filter = ("offer",)
    search_fields = ("code",)
    list_select_related = ("offer", "user")
