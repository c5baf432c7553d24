from django.contrib import admin

from .models import SigningKey


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    """Read-only view of the node's signing keys, for staff. Keys are created and rotated by
    the services (``rotate_receipt_key``), never here, and the private JWK is never shown:
    it is left out of every field list and not even loaded from the database."""

    list_display = ("kid", "node", "created_at", "retired_at")
    list_filter = ("node",)
    search_fields = ("kid",)
    fields = ("kid", "node", "public_jwk", "created_at", "retired_at")
    readonly_fields = fields
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return super().get_queryset(request).defer("private_jwk")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff
