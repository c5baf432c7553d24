from django import forms
from django.contrib import admin, messages
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from creatorcommerce.admin import ShopScopedInline, ShopScopedReadOnlyAdmin
from creatorcommerce.errors import DomainError
from creatorcommerce.text import TextValidator

from .models import Order, OrderLine
from .services import REFUNDABLE, order_can_refund, order_refund


class RefundForm(forms.Form):
    """The refund's confirm step: no default for the stock, so the creator chooses."""

    restock = forms.TypedChoiceField(
        label="The stock",
        choices=[("yes", "Put the units back in stock (the goods came back or never left)"),
                 ("no", "Leave the stock as it is (the goods are gone)")],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
    )  # fmt: skip
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        validators=[TextValidator(multiline=True)],  # kept for good in the audit log
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Kept in the audit log with your name.",
    )


class OrderLineInline(ShopScopedInline):
    model = OrderLine
    fields = ("sku_code", "title", "quantity", "unit_price", "offers", "total")
    readonly_fields = fields
    can_delete = False

    @admin.display(description="Offers applied")
    def offers(self, line):
        return "; ".join(f"{a['label']} ({a['source']} {a['id']}): {a['amount']}" for a in line.adjustments) or "-"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(ShopScopedReadOnlyAdmin):
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
    change_form_template = "orders/admin/order_change_form.html"
    actions = ["refund_selected"]
    fieldsets = (
        (None, {"fields": ("shop", "buyer_email", "stream", "status", "total", "currency", "created_at", "paid_at")}),
        ("Ship to", {"fields": ("shipping_label",), "description": "A copy of the buyer's address at the buy."}),
        ("Payment", {"fields": ("payment_status", "payment_reference", "capture_reference", "idempotency_key")}),
        ("Receipt", {"fields": ("receipt",), "classes": ("collapse",)}),
        ("Refund", {"fields": ("refund_reference", "refunded_at")}),
        (
            "Accepted offline",
            {
                "fields": ("offline_accepted_at", "capture_attempts", "capture_next_at", "capture_error"),
                "description": "An edge node accepted this order while the payment gateway could not be reached; "
                "the payment is taken when it answers again (docs/buying.md, 'Offline selling').",
            },
        ),
    )
    readonly_fields = (
        "buyer_email",
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
        "refund_reference",
        "refunded_at",
        "offline_accepted_at",
        "capture_attempts",
        "capture_next_at",
        "capture_error",
    )

    def get_fieldsets(self, request, obj=None):
        # The offline section only where it says something: orders an edge accepted offline.
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or obj.offline_accepted_at is None:
            fieldsets = [fs for fs in fieldsets if fs[0] != "Accepted offline"]
        return fieldsets

    @admin.display(description="Buyer")
    def buyer_email(self, obj):
        # Text, not the user's admin page: a creator may not open users (that page is 403).
        return obj.buyer.email if obj.buyer_id else "-"

    def get_urls(self):
        refund = self.admin_site.admin_view(self.refund_view)
        return [path("<int:object_id>/refund/", refund, name="orders_order_refund"), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self.get_object(request, object_id)
        paid = order is not None and order.status in REFUNDABLE
        can_refund = paid and order_can_refund(order=order, actor=request.user)
        if order is not None and order.status == Order.Status.CAPTURE_DECLINED:
            messages.warning(
                request,
                f"Order {order.pk} was accepted offline and its payment was declined later ({order.capture_error}). "
                "Its units stay sold and nothing was charged: contact the buyer, or close the order (Close…), "
                "with or without putting the units back.",
            )
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "can_refund": can_refund})

    def refund_view(self, request, object_id):
        """The confirm step of a refund (GET), and the refund itself (POST). Another shop's
        order is not in a creator's queryset: 404, as everywhere in this admin."""
        order = self.get_object(request, str(object_id))
        if order is None or not self.has_view_permission(request, order):
            raise Http404("No such order.")
        change_url = reverse("admin:orders_order_change", args=[order.pk])
        if request.method != "POST" and order.status not in REFUNDABLE:
            # Refunded already (or never paid): say so at once instead of showing the form.
            state = {
                Order.Status.REFUNDED: "has already been refunded",
                Order.Status.ACCEPTED_OFFLINE: "was accepted offline and its payment is not taken yet",
            }.get(order.status, "was never paid")
            messages.info(request, f"Order {order.pk} {state}; there is nothing to refund.")
            return redirect(change_url)
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            restock = form.cleaned_data["restock"]
            try:
                order_refund(order=order, actor=request.user, restock=restock, reason=form.cleaned_data["reason"])
            except DomainError as exc:
                messages.error(request, f"Order {order.pk} was not refunded: {exc.message}")
            else:
                stock = "its units are back in stock" if restock else "the stock was left as it is"
                if order.status == Order.Status.CAPTURE_DECLINED:
                    messages.success(request, f"Order {order.pk} closed (nothing was charged); {stock}.")
                else:
                    messages.success(request, f"Order {order.pk} refunded ({order.total} {order.currency}); {stock}.")
            return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Refund order #{order.pk}?",
            "order": order,
            "lines": list(order.lines.all()),
            "form": form,
        }
        return TemplateResponse(request, "orders/admin/refund_confirm.html", context)

    @admin.action(description="Refund the selected order…")
    def refund_selected(self, request, queryset):
        """Refunds are one order at a time, each with its own confirm step and reason."""
        selected = list(queryset.values_list("pk", flat=True)[:2])
        if len(selected) != 1:
            self.message_user(request, "Select exactly one order to refund.", messages.WARNING)
            return None
        return redirect("admin:orders_order_refund", selected[0])

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

    # Read-only (ShopScopedReadOnlyAdmin): the change page is a view page. A save would
    # write status and payment_status back from the object as loaded, over whatever the buy
    # path or a webhook wrote since; Django answers a POST to it with 403.

    def save_model(self, request, obj, form, change):
        pass  # never reached (no change permission); a guard should that ever change
