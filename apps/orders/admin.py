from django.contrib import admin
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

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

    list_display = (
        "id", "shop", "buyer", "status", "payment_status", "total", "currency", "ship_to", "created_at"
    )  # fmt: skip
    list_filter = ("status", "payment_status", "shipping_country")
    search_fields = (
        "id",
        "buyer__email",
        "idempotency_key",
        "shipping_name",
        "shipping_city",
        "shipping_postal_code",
    )
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]
    fieldsets = (
        (None, {"fields": ("shop", "buyer", "stream", "status", "total", "currency", "created_at", "paid_at")}),
        ("Ship to", {"fields": ("shipping_label",), "description": "A copy of the buyer's address at the buy."}),
        ("Payment", {"fields": ("payment_status", "payment_reference", "capture_reference", "idempotency_key")}),
        ("Receipt", {"fields": ("receipt",), "classes": ("collapse",)}),
    )
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
        "shipping_label",
    )

    @admin.display(description="Ship to", ordering="shipping_country")
    def ship_to(self, obj):
        return f"{obj.shipping_city} ({obj.shipping_country})" if obj.shipping_country else "-"

    @admin.display(description="Shipping address")
    def shipping_label(self, obj):
        address = obj.shipping_address
        if address is None:
            return "No address copy (order placed before orders kept one)"
        lines = [
            address["name"],
            address["line1"],
            address["line2"],
            " ".join(part for part in (address["postal_code"], address["city"]) if part),
            address["region"],
            address["country"],
        ]
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines if line))

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
