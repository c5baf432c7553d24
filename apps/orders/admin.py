from django.contrib import admin

from creatorcommerce.admin import ShopScopedAdmin, ShopScopedInline

from .models import Order, OrderLine


class OrderLineInline(ShopScopedInline):
    model = OrderLine
    fields = ("sku_code", "title", "quantity", "unit_price")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(ShopScopedAdmin):
    """Orders are written by the buy path only; the admin reads them."""

    list_display = ("id", "shop", "buyer", "status", "payment_status", "total", "currency", "created_at")
    list_filter = ("status", "payment_status")
    search_fields = ("id", "buyer__email", "idempotency_key")
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]
    readonly_fields = (
        "buyer",
        "shop",
        "stream",
        "status",
        "payment_status",
        "total",
        "currency",
        "idempotency_key",
        "payment_reference",
        "capture_reference",
        "receipt",
        "created_at",
        "paid_at",
    )
    exclude = ("request_fingerprint", "payment_method")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # The change page is a view page: a save would write status and payment_status back
        # from the object as loaded, over whatever the buy path or a webhook wrote since.
        # Django answers a POST to it with 403.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        pass  # never reached (no change permission); a guard should that ever change
