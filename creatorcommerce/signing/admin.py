from django.contrib import admin

from creatorcommerce.admin import ReadOnlyStaffAdmin

from .models import SigningKey


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyStaffAdmin):
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
