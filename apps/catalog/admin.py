from django.contrib import admin
from django.db import transaction

from creatorcommerce.admin import ShopScopedAdmin, ShopScopedInline

from .models import SKU, Location, PriceMapping, PriceSource, Product, StockLevel
from .services import stock_adjust


class SkuInline(ShopScopedInline):
    model = SKU
    fields = ("code", "title", "price", "currency", "per_buyer_limit", "is_active")
    exclude = ("shop",)


@admin.register(Product)
class ProductAdmin(ShopScopedAdmin):
    list_display = ("title", "shop", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("title", "skus__code")
    inlines = [SkuInline]

    def save_formset(self, request, form, formset, change):
        # SKUs belong to the product's shop; creators never pick it.
        for obj in formset.save(commit=False):
            obj.shop = form.instance.shop
            obj.save()
        for obj in formset.deleted_objects:
            obj.delete()
        formset.save_m2m()


@admin.register(Location)
class LocationAdmin(ShopScopedAdmin):
    list_display = ("name", "kind", "shop", "is_default")
    list_filter = ("kind",)


@admin.register(StockLevel)
class StockLevelAdmin(ShopScopedAdmin):
    """Stock counts. Edits go through the same service as the API (conditional updates and a
    ``stock.changed`` event), never a plain save."""

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
