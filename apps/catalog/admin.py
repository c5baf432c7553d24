from collections import Counter

from django import forms
from django.contrib import admin
from django.db import transaction

from creatorcommerce.admin import ShopScopedAdmin, ShopScopedInline, is_staff, user_shop

from .models import SKU, Location, PriceMapping, PriceSource, Product, StockLevel
from .services import MAX_STOCK_PER_LEVEL, stock_adjust


class SkuInlineFormSet(forms.BaseInlineFormSet):
    """SKU rows of one product. Their ``shop`` is not a form field (it follows the product),
    so Django cannot check the (shop, code) constraint; this does, as form errors."""

    creator_shop = None  # the creator's own shop; None for staff, who pick the product's shop

    def clean(self):
        super().clean()
        shop_id = self.creator_shop.pk if self.creator_shop is not None else self.instance.shop_id
        deleting = [form for form in self.forms if self.can_delete and self._should_delete_form(form)]
        rows = [form for form in self.forms if form.cleaned_data.get("code") and form not in deleting]
        if shop_id is None or not rows:
            return  # the product form shows its own errors
        repeated = {code for code, n in Counter(form.cleaned_data["code"] for form in rows).items() if n > 1}
        # SKUs deleted in this submission are deleted before the others are saved (see
        # ProductAdmin.save_formset), so their codes may be reused; nothing else is freed early.
        deleted = [form.instance.pk for form in deleting if form.instance.pk is not None]
        holders = dict(
            SKU.objects.filter(shop_id=shop_id, code__in=[form.cleaned_data["code"] for form in rows])
            .exclude(pk__in=deleted)
            .values_list("code", "pk")
        )
        for form in rows:
            code = form.cleaned_data["code"]
            if code in repeated:
                form.add_error("code", "This code is given to more than one SKU here.")
            elif holders.get(code, form.instance.pk) != form.instance.pk:
                form.add_error("code", "Another SKU of this shop already has this code.")


class SkuInline(ShopScopedInline):
    model = SKU
    formset = SkuInlineFormSet
    fields = ("code", "title", "price", "currency", "per_buyer_limit", "is_active")
    exclude = ("shop",)

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        creator_shop = None if is_staff(request.user) else user_shop(request.user)
        shop = obj.shop if obj is not None else creator_shop
        if shop is not None and "currency" in formset.form.base_fields:
            # New rows start in the shop's currency (fields are built afresh per call).
            formset.form.base_fields["currency"].initial = shop.currency
        return type(formset.__name__, (formset,), {"creator_shop": creator_shop})


@admin.register(Product)
class ProductAdmin(ShopScopedAdmin):
    list_display = ("title", "shop", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("title", "skus__code")
    inlines = [SkuInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is not SKU:
            return super().save_formset(request, form, formset, change)
        # SKUs belong to the product's shop; creators never pick it. Deletions go first so a
        # code freed by one can be reused by another row of the same submission.
        objs = formset.save(commit=False)
        for obj in formset.deleted_objects:
            obj.delete()
        for obj in objs:
            is_new = obj.pk is None
            obj.shop = form.instance.shop
            obj.save()
            if is_new:
                # A stock row (0 units) at the default location, so the SKU is buyable once
                # stocked; through the service, which also emits stock.changed.
                stock_adjust(sku=obj, add=0)
        formset.save_m2m()


@admin.register(Location)
class LocationAdmin(ShopScopedAdmin):
    list_display = ("name", "kind", "shop", "is_default")
    list_filter = ("kind",)


class StockLevelForm(forms.ModelForm):
    def clean_available(self):
        available = self.cleaned_data["available"]
        if available is not None and available > MAX_STOCK_PER_LEVEL:
            raise forms.ValidationError(
                "At most %(limit)s units per stock level.", code="max_value", params={"limit": MAX_STOCK_PER_LEVEL}
            )
        return available

    def clean(self):
        cleaned = super().clean()
        sku, location = cleaned.get("sku"), cleaned.get("location")
        if sku is not None and location is not None and location.shop_id != sku.shop_id:
            self.add_error("location", "This location belongs to another shop than the SKU.")
        return cleaned


@admin.register(StockLevel)
class StockLevelAdmin(ShopScopedAdmin):
    """Stock counts. Edits go through the same service as the API (conditional updates and a
    ``stock.changed`` event), never a plain save."""

    form = StockLevelForm
    list_display = ("sku", "location", "available", "updated_at")
    list_select_related = ("sku", "location")
    search_fields = ("sku__code",)
    fields = ("sku", "location", "available")

    def get_readonly_fields(self, request, obj=None):
        return ("sku", "location") if obj else ()

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            level = stock_adjust(sku=obj.sku, location=obj.location, set_to=obj.available)
        obj.pk = level.pk


@admin.register(SKU)
class SkuAdmin(ShopScopedAdmin):
    list_display = ("code", "product", "price", "currency", "per_buyer_limit", "is_active")
    list_select_related = ("product",)
    search_fields = ("code", "product__title")
    list_filter = ("is_active",)

    def has_add_permission(self, request):
        return False  # SKUs are added on their product's page


class PriceMappingInline(ShopScopedInline):
    model = PriceMapping
    fields = ("external_id", "sku")


@admin.register(PriceSource)
class PriceSourceAdmin(ShopScopedAdmin):
    """Price trackers allowed to post to /hooks/price/?source=<public id>."""

    list_display = ("name", "shop", "public_id", "is_active", "created_at")
    readonly_fields = ("public_id", "secret", "webhook_url")
    inlines = [PriceMappingInline]

    @admin.display(description="Webhook URL")
    def webhook_url(self, obj):
        return f"/hooks/price/?source={obj.public_id}" if obj.pk else "(saved first)"
