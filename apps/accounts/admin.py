from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from creatorcommerce.admin import ShopScopedAdmin

from .forms import time_zone_choices
from .models import Shop, User
from .services import user_grant_role, user_revoke_role

# The role flags on the user form, by role name (apps/accounts/services.py ROLES).
ROLE_FIELDS = {"creator": "is_creator", "staff": "is_staff"}


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "display_name", "is_creator", "is_staff", "is_active", "date_joined")
    list_filter = ("is_creator", "is_staff", "is_superuser", "is_active")
    search_fields = ("email", "display_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("display_name", "time_zone")}),
        ("Roles", {"fields": ("is_active", "is_creator", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "time_zone":
            kwargs["widget"] = forms.Select(choices=time_zone_choices())
        return super().formfield_for_dbfield(db_field, request, **kwargs)

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

    def save_model(self, request, obj, form, change):
        """Roles change only through user_grant_role / user_revoke_role, as with the
        ``grant_role`` command: the form's ticks are put back before the user is saved, then
        applied by the services (a new creator gets their shop; ``role.granted`` and
        ``role.revoked`` are emitted). The admin wraps all of it in one transaction."""
        wanted = {}
        for role, field in ROLE_FIELDS.items():
            if field in form.changed_data:
                wanted[role] = getattr(obj, field)
                setattr(obj, field, form.initial.get(field, False))
        super().save_model(request, obj, form, change)
        # A creator ticked before roles went through the service may have no shop: granting
        # again (idempotent) gives them one.
        if obj.is_creator and "creator" not in wanted and not Shop.objects.filter(owner=obj).exists():
            wanted["creator"] = True
        for role, granted in wanted.items():
            service = user_grant_role if granted else user_revoke_role
            user = service(email=obj.email, role=role)
            setattr(obj, ROLE_FIELDS[role], getattr(user, ROLE_FIELDS[role]))


@admin.register(Shop)
class ShopAdmin(ShopScopedAdmin):
    list_display = ("name", "slug", "owner", "currency", "shipping_fee", "created_at")
    search_fields = ("name", "slug", "owner__email")
    prepopulated_fields = {"slug": ("name",)}

    def has_add_permission(self, request):
        # Shops come with the creator role (grant_role); creators never add a second one.
        return request.user.is_active and request.user.is_staff

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        return () if request.user.is_staff else ("owner",)
