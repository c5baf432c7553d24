"""The award moderation queue in the admin, and the creator's "Retention" page
(docs/loyalty.md, "Staff moderation" and "Retention").

Awards: staff see every shop's, a creator their own shop's, read-only. Only staff get the
actions "Approve selected" and "Revoke selected…" (its confirm step asks for the reason, as
a delete asks for confirmation); both go through ``moderation`` like the API does, all or
nothing, and are written to the audit log.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter, helpers
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from apps.accounts.models import Shop
from creatorcommerce.admin import ShopScopedReadOnlyAdmin, is_staff, user_shop
from creatorcommerce.errors import DomainError
from creatorcommerce.text import TextValidator

from .models import Award
from .moderation import REASON_MAX_LENGTH, awards_approve, awards_revoke, moderation_allowed
from .perks import perk_held_by
from .retention import DEFAULT_WEEKS, holders_chart, retention_chart, retention_of


class RevokeForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=REASON_MAX_LENGTH,
        validators=[TextValidator(multiline=True)],  # kept for good in the audit log
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required. Kept in the audit log with your name; not sent to the viewer.",
    )


def _perk_state(perk) -> str:
    if perk.withdrawn_at:
        return "withdrawn"
    if perk.used_at is None:
        return "unused"
    if perk.order_id is not None:
        return f"used (order {perk.order_id})"
    held_by = perk_held_by(perk)
    # Taken by a buy that is not paid yet (or paid a moment ago, its order not yet recorded).
    return f"held by pending order {held_by}" if held_by is not None else "used"


@admin.register(Award)
class AwardAdmin(ShopScopedReadOnlyAdmin):
    """Awards are written by the rules and by moderation only; the admin reads them, and
    staff approve or revoke them through the actions."""

    list_display = ("badge", "user_email", "shop", "status", "stream", "awarded_at", "decided_by", "short_reason")
    list_select_related = ("badge__shop", "user", "stream", "decided_by")
    search_fields = ("user__email", "badge__name", "reason")
    date_hierarchy = "awarded_at"
    actions = ["approve_selected", "revoke_selected"]
    fields = (
        "badge",
        "user_email",
        "shop",
        "status",
        "scope",
        "stream",
        "awarded_at",
        "decided_by_email",
        "decided_at",
        "reason",
        "perks",
        "audit",
    )
    readonly_fields = fields

    def get_list_filter(self, request):
        # Related-only filters: a creator's choices come from their own awards, so no
        # other shop's badge or stream is named.
        filters = ["status", ("badge", RelatedOnlyFieldListFilter), ("stream", RelatedOnlyFieldListFilter)]
        if is_staff(request.user):
            filters.append(("badge__shop", RelatedOnlyFieldListFilter))
        return filters

    @admin.display(description="Viewer", ordering="user__email")
    def user_email(self, award):
        return award.user.email

    @admin.display(description="Decided by")
    def decided_by_email(self, award):
        # Text, not the user's admin page: a creator may not open users (that page is 403).
        return award.decided_by.email if award.decided_by_id else "-"

    @admin.display(description="Shop", ordering="badge__shop__name")
    def shop(self, award):
        return award.badge.shop

    @admin.display(description="Reason")
    def short_reason(self, award):
        return award.reason if len(award.reason) <= 40 else award.reason[:39] + "…"

    @admin.display(description="Perks it granted")
    def perks(self, award):
        rows = [(perk.get_kind_display(), _perk_state(perk)) for perk in award.perks.all()]
        return format_html_join(", ", "{} ({})", rows) or "-"

    @admin.display(description="Audit log")
    def audit(self, award):
        url = reverse("admin:audit_auditentry_changelist")
        return format_html(
            '<a href="{}?object_type={}&amp;q={}">Entries about this award</a>', url, "loyalty.award", award.pk
        )

    # -- who may moderate --------------------------------------------------------------------

    def has_moderate_permission(self, request):
        return moderation_allowed(request.user)

    @admin.action(description="Approve selected awards", permissions=["moderate"])
    def approve_selected(self, request, queryset):
        awards = list(queryset)
        try:
            done = awards_approve(awards=awards, actor=request.user)
        except DomainError as exc:
            self.message_user(request, f"Nothing was approved: {exc.message}", messages.ERROR)
            return None
        self.message_user(request, f"{len(done)} award(s) approved.", messages.SUCCESS)
        return None

    @admin.action(description="Revoke selected awards…", permissions=["moderate"])
    def revoke_selected(self, request, queryset):
        """First the confirm page with the reason (and what will happen); its POST comes
        back here with ``confirm`` and revokes them all, or none."""
        if not self.has_moderate_permission(request):
            raise PermissionDenied
        awards = list(queryset.select_related("badge", "user", "badge__shop"))
        form = RevokeForm(request.POST if "confirm" in request.POST else None)
        if "confirm" in request.POST and form.is_valid():
            try:
                done = awards_revoke(awards=awards, actor=request.user, reason=form.cleaned_data["reason"])
            except DomainError as exc:
                self.message_user(request, f"Nothing was revoked: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{len(done)} award(s) revoked.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Revoke {len(awards)} award(s)?",
            "awards": awards,
            "unused_perks": sum(
                1 for a in awards for p in a.perks.all() if p.used_at is None and p.withdrawn_at is None
            ),
            # Taken by a buy not paid yet: neither withdrawn now nor kept (docs/loyalty.md).
            "held_perks": sum(1 for a in awards for p in a.perks.all() if perk_held_by(p) is not None),
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
            "index": request.POST.get("index", "0"),
        }
        return TemplateResponse(request, "loyalty/admin/revoke_confirm.html", context)

    # -- the retention page ------------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view(self.retention_view)
        return [path("retention/", view, name="loyalty_retention"), *super().get_urls()]

    def retention_view(self, request):
        """A creator sees their own shop; staff pick one (``?shop=<id>``); ``?weeks=`` (4-52)
        how many weekly cohorts."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        shops = None
        if is_staff(request.user):
            shops = list(Shop.objects.order_by("name"))
            wanted = request.GET.get("shop", "")
            shop = next((s for s in shops if str(s.pk) == wanted), shops[0] if shops else None)
        else:
            shop = user_shop(request.user)
        if shop is None:
            raise Http404("No shop.")
        weeks = request.GET.get("weeks", "")
        weeks = min(max(int(weeks), 4), 52) if weeks.isascii() and weeks.isdigit() and len(weeks) < 4 else DEFAULT_WEEKS
        retention = retention_of(shop=shop, weeks=weeks)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Retention: {shop.name}",
            "shop": shop,
            "shops": shops,
            "weeks": weeks,
            "retention": retention,
            "chart": retention_chart(retention),
            "holders": holders_chart(retention),
        }
        return TemplateResponse(request, "loyalty/admin/retention.html", context)


admin.site.register_page(
    app_label="loyalty",
    name="Retention",
    url_name="loyalty_retention",
    allowed=lambda request: is_staff(request.user) or user_shop(request.user) is not None,
)
