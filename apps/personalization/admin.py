"""The co-purchase model in the admin (docs/personalization.md): read-only, written only by
``services.model_train``. Staff see every shop's, a creator their own shop's: what sells with
what, never who bought it (the model holds no viewer)."""

from django.contrib import admin

from creatorcommerce.admin import ShopScopedInline, ShopScopedReadOnlyAdmin

from .models import ItemModel, Neighbour


class NeighbourInline(ShopScopedInline):
    model = Neighbour
    fields = ("sku", "rank", "neighbour", "score")
    readonly_fields = fields
    ordering = ("sku__code", "rank")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("sku", "neighbour")


@admin.register(ItemModel)
class ItemModelAdmin(ShopScopedReadOnlyAdmin):
    list_display = ("shop", "version", "trained_at", "orders", "buyers", "items", "pairs")
    list_select_related = ("shop",)
    readonly_fields = (
        "shop",
        "version",
        "trained_at",
        "orders",
        "buyers",
        "items",
        "pairs",
        "last_order_id",
        "half_life_days",
        "window_days",
    )
    inlines = (NeighbourInline,)
