"""The admin site, and the creator-scoped ModelAdmin every app's admin builds on.

Staff (``is_staff``) see and edit everything. A creator logs into the same ``/admin/`` and
sees only objects of their own shop: querysets, foreign-key choices and new objects are all
scoped to it. Everyone else is refused.

Models that belong to a shop say how with a ``SHOP_PATH`` class attribute: the ORM path to
their Shop (``"shop"``, ``"product__shop"``); the Shop model itself uses ``"self"``.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS
from django.db import models

from .text import TextValidator


def user_shop(user):
    """The shop a creator owns, or None."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_creator", False):
        return None
    return getattr(user, "shop", None)


def is_staff(user) -> bool:
    return bool(user.is_active and user.is_staff)


def admin_allowed(user) -> bool:
    """Who may use ``/admin/``: active staff, and active creators who own a shop."""
    return bool(user.is_active and (user.is_staff or user_shop(user) is not None))


def shop_of(obj):
    """The Shop ``obj`` belongs to, following its model's SHOP_PATH."""
    path = getattr(type(obj), "SHOP_PATH", None)
    if path is None:
        return None
    if path == "self":
        return obj
    target = obj
    for part in path.split("__"):
        target = getattr(target, part, None)
        if target is None:
            return None
    return target


def scoped_queryset(model, shop, queryset=None):
    """``model``'s objects that belong to ``shop``; None when the model has no shop."""
    path = getattr(model, "SHOP_PATH", None)
    if path is None:
        return None
    qs = model._default_manager.all() if queryset is None else queryset
    if shop is None:
        return qs.none()
    if path == "self":
        return qs.filter(pk=shop.pk)
    return qs.filter(**{path: shop})


class AdminLoginForm(AdminAuthenticationForm):
    """``/admin/login/``: Django's form lets in staff only; this one lets in everyone the
    site lets in (``admin_allowed``), so a creator logs in here like staff do."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": (
            "Please enter the correct %(username)s and password for a staff or creator account. "
            "Note that both fields may be case-sensitive."
        ),
    }

    def confirm_login_allowed(self, user):
        AuthenticationForm.confirm_login_allowed(self, user)  # refuses inactive accounts
        if not admin_allowed(user):
            raise forms.ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class AdminSite(admin.AdminSite):
    site_header = "CreatorCommerce admin"
    site_title = "CreatorCommerce"
    index_title = "Shop administration"
    login_form = AdminLoginForm

    def has_permission(self, request):
        return admin_allowed(request.user)

    def register_page(self, *, app_label: str, name: str, url_name: str, allowed) -> None:
        """List an admin page that is no model's list (a report, a chart) in its app on the
        index and in the side bar, for the users ``allowed(request)`` lets see it."""
        self._pages = [*getattr(self, "_pages", []), (app_label, name, url_name, allowed)]

    def get_app_list(self, request, app_label=None):
        from django.urls import reverse

        app_list = super().get_app_list(request, app_label)
        for label, name, url_name, allowed in getattr(self, "_pages", []):
            app = next((app for app in app_list if app["app_label"] == label), None)
            if app is None or not allowed(request):
                continue
            app["models"].append(
                {
                    "name": name,
                    "object_name": name.replace(" ", ""),
                    "perms": {"add": False, "change": False, "delete": False, "view": True},
                    "admin_url": reverse(f"{self.name}:{url_name}"),
                    "add_url": None,
                    "view_only": True,
                }
            )
        return app_list

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every admin registered here, and its inlines, gets the free-text rule (_SafeText)."""
        super().register(model_or_iterable, with_safe_text(admin_class or admin.ModelAdmin), **options)


class _ScopedChoices:
    """Foreign-key and many-to-many choices limited to the creator's own shop."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not is_staff(request.user):
            scoped = scoped_queryset(db_field.related_model, user_shop(request.user))
            if scoped is not None:
                kwargs["queryset"] = scoped
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if not is_staff(request.user):
            scoped = scoped_queryset(db_field.related_model, user_shop(request.user))
            if scoped is not None:
                kwargs["queryset"] = scoped
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class _SafeText:
    """Every text box refuses control and bidirectional-override characters
    (creatorcommerce/text.py); a TextField's box may hold line breaks and tabs."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if isinstance(db_field, (models.CharField, models.TextField)) and isinstance(formfield, forms.CharField):
            formfield.validators.append(TextValidator(multiline=isinstance(db_field, models.TextField)))
        return formfield


def with_safe_text(admin_class):
    """``admin_class`` (and its inlines) with _SafeText mixed in, unless it already has it."""
    if issubclass(admin_class, _SafeText):
        return admin_class
    attrs = {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__}
    if getattr(admin_class, "inlines", None):
        attrs["inlines"] = [with_safe_text(inline) for inline in admin_class.inlines]
    return type(admin_class.__name__, (_SafeText, admin_class), attrs)


class _ShopAssignedForm:
    """Mixed into a creator's model form when ``shop`` is not a field of it.

    The instance gets the creator's shop before model validation, and ``shop`` stays in
    that validation, so the model's own unique checks and constraints that involve the shop
    (``(shop, code)``, one default per shop, ...) become form errors instead of an
    IntegrityError when the admin saves.
    """

    assigned_shop = None  # set on the subclass made per request

    def _post_clean(self):
        self.instance.shop = self.assigned_shop
        super()._post_clean()

    def _get_validation_exclusions(self):
        exclude = super()._get_validation_exclusions()
        exclude.discard("shop")
        return exclude

    def _update_errors(self, errors):
        # The form has no "shop" field to hang an error on: show it for the whole form.
        error_dict = getattr(errors, "error_dict", None)
        if error_dict and "shop" in error_dict and "shop" not in self.fields:
            error_dict.setdefault(NON_FIELD_ERRORS, []).extend(error_dict.pop("shop"))
        super()._update_errors(errors)


class ServiceCheckedForm(forms.ModelForm):
    """A shop's model form whose rules live in its app's service (``geo_offer_errors``,
    ``badge_errors``, ...): ``service_errors`` runs in ``clean`` on the ``service_fields``
    the form shows, and each message lands on its field (or on the form, for a field it does
    not show), so the admin shows what the service would refuse before the save calls it.
    ``assigned_shop`` is the creator's shop (set by ``ShopScopedAdmin.get_form``); staff
    choose one in the form."""

    assigned_shop = None
    service_fields: tuple[str, ...] = ()

    def service_errors(self, *, shop, fields: dict) -> dict[str, list[str]]:
        raise NotImplementedError

    def clean(self):
        cleaned = super().clean()
        shop = self.assigned_shop or cleaned.get("shop")
        if shop is not None:
            fields = {name: cleaned.get(name) for name in self.service_fields if name in self.fields}
            for field, messages in self.service_errors(shop=shop, fields=fields).items():
                for message in messages:
                    if field not in self.fields:
                        self.add_error(None, message)
                    elif field not in self.errors:  # one message per field: its own first
                        self.add_error(field, message)
        return cleaned


class StaffShopColumn:
    """Staff see every shop's rows: a "Shop" column says whose each is (a creator's list is
    their own shop's only, so it has none). ``shop_path`` is the ORM path to the Shop."""

    shop_path = "shop"

    def get_list_display(self, request):
        columns = tuple(super().get_list_display(request))
        return (*columns[:1], "shop_name", *columns[1:]) if is_staff(request.user) else columns

    @admin.display(description="Shop")
    def shop_name(self, obj):
        target = obj
        for part in self.shop_path.split("__"):
            target = getattr(target, part)
        return target.name


class ShopScopedAdmin(_SafeText, _ScopedChoices, admin.ModelAdmin):
    """Full rights for staff; for a creator, full rights on their own shop's objects only."""

    def _allowed(self, request, obj=None) -> bool:
        if is_staff(request.user):
            return True
        shop = user_shop(request.user)
        return shop is not None and (obj is None or shop_of(obj) == shop)

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_add_permission(self, request):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if is_staff(request.user):
            return qs
        return scoped_queryset(self.model, user_shop(request.user), qs)

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not is_staff(request.user) and self.model.SHOP_PATH == "shop":
            exclude.append("shop")
        return exclude

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        shop = user_shop(request.user)
        if not is_staff(request.user) and self.model.SHOP_PATH == "shop" and shop is not None:
            form = type(form.__name__, (_ShopAssignedForm, form), {"assigned_shop": shop})
        return form

    def assign_shop(self, request, obj) -> None:
        """A creator's records are their own shop's (admins that save through a service call
        this before it)."""
        if not is_staff(request.user) and self.model.SHOP_PATH == "shop":
            obj.shop = user_shop(request.user)

    def save_model(self, request, obj, form, change):
        self.assign_shop(request, obj)
        super().save_model(request, obj, form, change)


class _NoWrites:
    """For records only services write: nobody adds, changes or deletes them in the admin."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ShopScopedReadOnlyAdmin(_NoWrites, ShopScopedAdmin):
    """Orders, audit entries: staff see all of them, a creator their own shop's."""


class ShopScopedInline(_SafeText, _ScopedChoices, admin.TabularInline):
    """Rows edited inside a shop-scoped parent, whose admin already checked the shop."""

    extra = 0

    def _allowed(self, request) -> bool:
        return is_staff(request.user) or user_shop(request.user) is not None

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)

    def has_add_permission(self, request, obj=None):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request)


class ReadOnlyStaffAdmin(_NoWrites, admin.ModelAdmin):
    """The outbox, signing keys: staff may look, nobody else."""

    def has_view_permission(self, request, obj=None):
        return is_staff(request.user)

    def has_module_permission(self, request):
        return is_staff(request.user)
