from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from creatorcommerce.admin import ShopScopedAdmin

from .models import Shop, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "display_name", "is_creator", "is_staff", "is_active", "date_joined")
    list_filter = ("is_creator", "is_staff", "is_superuser", "is_active")
    search_fields = ("email", "display_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("display_name",)}),
        ("Roles", {"fields": ("is_active", "is_creator", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    # Staff moderate users (view, deactivate); only superusers edit permissions.
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_change_permission(self, request, obj=None):
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        if user.is_superuser or obj is None:
            return True
        # A staff member who is not a superuser may not change (nor set the password of,
        # since Django's password view asks this too) a superuser or another staff member:
        # that would let them take the account over. They still see them (view permission).
        return not (obj.is_superuser or (obj.is_staff and obj.pk != user.pk))

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return ("last_login", "date_joined")
        return ("is_superuser", "groups", "user_permissions", "is_staff", "last_login", "date_joined")


@admin.register(Shop)
class ShopAdmin(ShopScopedAdmin):
    list_display = ("name", "slug", "owner", "currency", "created_at")
    search_fields = ("name", "slug", "owner__email")
    prepopulated_fields = {"slug": ("name",)}

    def has_add_permission(self, request):
        # Shops come with the creator role (grant_role); creators never add a second one.
        return request.user.is_active and request.user.is_staff

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        return () if request.user.is_staff else ("owner",)
