"""The badges' admin (docs/loyalty.md, "Badges and rules"): a creator's own badges only, the
drop choices their own streams (the ``stream`` foreign key's queryset, scoped by
ShopScopedAdmin), every rule's requirement a field error. Written through ``badge_save``."""

from __future__ import annotations

from django.contrib import admin

from creatorcommerce.admin import ServiceCheckedForm, ShopScopedAdmin, StaffShopColumn, is_staff

from .badges import BADGE_FIELDS, badge_errors, badge_save
from .models import Badge, Tier
from .tiers import TIER_FIELDS, tier_errors, tier_save


class BadgeForm(ServiceCheckedForm):
    service_fields = BADGE_FIELDS

    class Meta:
        model = Badge
        fields = ("shop", *BADGE_FIELDS)

    def service_errors(self, *, shop, fields):
        return badge_errors(shop=shop, fields=fields, badge=self.instance)


@admin.register(Badge)
class BadgeAdmin(StaffShopColumn, ShopScopedAdmin):
    form = BadgeForm
    list_display = ("__str__", "rule", "rule_terms", "needs_review", "is_active", "awards_granted")
    list_filter = ("rule", "needs_review", "is_active")
    list_select_related = ("shop",)
    search_fields = ("name",)
    exclude = ()
    fieldsets = (
        (None, {"fields": ("shop", "name", "icon", "description", "is_active")}),
        (
            "Rule",
            {
                "fields": ("rule", "count", "seconds", ("amount", "period_days"), "stream", "needs_review"),
                "description": "First N buyers of a drop (count; a drop, or empty for every drop), bought within "
                "T seconds of a deal opening (seconds), K consecutive drops (count), K orders (count), or spend "
                "over an amount in a period (amount, period_days).",
            },
        ),
        ("Perk", {"fields": ("perk_kind", "perk_percent", "perk_minutes", "perk_valid_days")}),
    )

    def get_fieldsets(self, request, obj=None):
        if is_staff(request.user):
            return self.fieldsets
        first = dict(self.fieldsets[0][1])
        first["fields"] = tuple(f for f in first["fields"] if f != "shop")
        return ((None, first), *self.fieldsets[1:])

    @admin.display(description="Terms")
    def rule_terms(self, obj):
        if obj.rule == Badge.Rule.DEAL_SPEED:
            return f"{obj.seconds} s"
        if obj.rule == Badge.Rule.SPEND:
            return f"> {obj.amount} in {obj.period_days} days"
        return obj.count

    @admin.display(description="Granted")
    def awards_granted(self, obj):
        return obj.awards.filter(status="granted").count()

    def save_model(self, request, obj, form, change):
        self.assign_shop(request, obj)
        fields = {name: form.cleaned_data[name] for name in BADGE_FIELDS if name in form.cleaned_data}
        saved = badge_save(shop=obj.shop, badge=obj if change else None, **fields)
        obj.pk = saved.pk
        obj._state.adding = False


class TierForm(ServiceCheckedForm):
    service_fields = TIER_FIELDS

    class Meta:
        model = Tier
        fields = ("shop", *TIER_FIELDS)

    def service_errors(self, *, shop, fields):
        return tier_errors(shop=shop, fields=fields, tier=self.instance)


@admin.register(Tier)
class TierAdmin(StaffShopColumn, ShopScopedAdmin):
    """Spend tiers of the creator's shop (docs/loyalty.md, "Perks and tiers"), written
    through ``tier_save``; the badge a tier may require is one of their own."""

    form = TierForm
    list_display = ("name", "threshold", "period", "requires_badge", "perk_kind")
    list_select_related = ("shop", "requires_badge")

    def get_fields(self, request, obj=None):
        fields = ("shop", *TIER_FIELDS)
        return fields if is_staff(request.user) else fields[1:]

    def save_model(self, request, obj, form, change):
        self.assign_shop(request, obj)
        fields = {name: form.cleaned_data[name] for name in TIER_FIELDS if name in form.cleaned_data}
        saved = tier_save(shop=obj.shop, tier=obj if change else None, **fields)
        obj.pk = saved.pk
        obj._state.adding = False


# The moderation queue (awards), the retention page: apps/loyalty/admin_queue.py.
from . import admin_queue  # noqa: E402, F401
