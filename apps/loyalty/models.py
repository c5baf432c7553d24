"""Loyalty: badges awarded by rules over commerce events, the perks they (and tiers) grant,
tiers by spend, and staff moderation of awards (docs/loyalty.md)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from apps.accounts.models import Shop
from apps.pricing.offers import EARLY_ACCESS_MAX_MINUTES


class PerkKind(models.TextChoices):
    FREE_SHIPPING = "free_shipping", "Free shipping"
    PERCENT_OFF = "percent_off", "Percent off the next order"
    EARLY_ACCESS = "early_access", "Early access to a drop"


class PerkGrant(models.Model):
    """What a badge or a tier grants: one perk of ``kind`` (with its percent or minutes),
    valid for ``valid_days`` after it is granted (empty: no expiry). Abstract: Badge and
    Tier carry these fields."""

    perk_kind = models.CharField(max_length=16, choices=PerkKind.choices, blank=True, help_text="Empty: no perk.")
    perk_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="percent_off: how much off the next order.",
    )
    perk_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(EARLY_ACCESS_MAX_MINUTES)],
        help_text="early_access: buy a drop's deal this many minutes before it opens to the public.",
    )
    perk_valid_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Days the perk can be used (empty: no end)."
    )

    class Meta:
        abstract = True


class Badge(PerkGrant):
    """A badge of a shop and the rule that awards it (docs/loyalty.md, "Rules")."""

    SHOP_PATH = "shop"

    class Rule(models.TextChoices):
        FIRST_BUYERS = "first_buyers", "First N buyers of a drop"
        DEAL_SPEED = "deal_speed", "Bought within T seconds of a deal opening"
        STREAK = "streak", "Bought in K consecutive drops of the shop"
        REPEAT = "repeat", "Repeat buyer: K orders"
        SPEND = "spend", "Spent over an amount in a period"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="badges")
    name = models.CharField(max_length=80)
    icon = models.CharField(max_length=16, default="★", help_text="An emoji or a short symbol shown on screen.")
    description = models.CharField(max_length=280, blank=True)
    rule = models.CharField(max_length=16, choices=Rule.choices)
    count = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="N buyers, K drops or K orders."
    )
    seconds = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="deal_speed: within this many seconds."
    )
    amount = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="spend: more than this (shop currency)."
    )
    period_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="spend: over the last this many days."
    )
    stream = models.ForeignKey(
        "streams.Stream",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="first_buyers: only this drop (empty: every drop of the shop, one award per drop).",
    )
    needs_review = models.BooleanField(default=False, help_text="Awards wait for staff approval before they count.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("shop", "name")
        constraints = [
            models.UniqueConstraint(fields=("shop", "name"), name="loyalty_badge_name_per_shop"),
            models.CheckConstraint(
                condition=~Q(rule__in=["first_buyers", "streak", "repeat"]) | Q(count__isnull=False),
                name="loyalty_badge_rule_has_count",
            ),
            models.CheckConstraint(
                condition=~Q(rule="deal_speed") | Q(seconds__isnull=False), name="loyalty_badge_speed_has_seconds"
            ),
            models.CheckConstraint(
                condition=~Q(rule="spend") | Q(amount__isnull=False, period_days__isnull=False),
                name="loyalty_badge_spend_has_amount_and_period",
            ),
        ]

    def __str__(self):
        return f"{self.icon} {self.name}"


class Award(models.Model):
    """A badge awarded to a viewer, once per badge, viewer and scope ("" for the shop, or
    ``stream:<id>`` for a per-drop badge). Pending awards wait for staff; granted ones
    count (and pop on screen); revoked ones keep their reason."""

    SHOP_PATH = "badge__shop"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending review"
        GRANTED = "granted", "Granted"
        REVOKED = "revoked", "Revoked"

    badge = models.ForeignKey(Badge, on_delete=models.CASCADE, related_name="awards")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="awards")
    scope = models.CharField(max_length=40, blank=True, default="")
    status = models.CharField(max_length=8, choices=Status.choices, db_index=True)
    stream = models.ForeignKey(
        "streams.Stream", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", help_text="Won during it."
    )
    awarded_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.TextField(blank=True, help_text="Why it was revoked (required to revoke).")

    class Meta:
        ordering = ("-awarded_at", "pk")
        constraints = [
            models.UniqueConstraint(fields=("badge", "user", "scope"), name="loyalty_one_award_per_badge_user_scope")
        ]

    def __str__(self):
        return f"{self.badge} → {self.user_id} ({self.status})"


class Tier(PerkGrant):
    """A spend tier of a shop: a viewer whose spend (paid orders less refunds, over their
    lifetime or this calendar year) reaches ``threshold`` is in it."""

    SHOP_PATH = "shop"

    class Period(models.TextChoices):
        LIFETIME = "lifetime", "Lifetime"
        CALENDAR_YEAR = "calendar_year", "This calendar year"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="tiers")
    name = models.CharField(max_length=40)
    threshold = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])
    period = models.CharField(max_length=16, choices=Period.choices, default=Period.LIFETIME)
    requires_badge = models.ForeignKey(
        Badge,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tiers",
        help_text="Only viewers holding this badge (granted) reach the tier.",
    )

    class Meta:
        ordering = ("shop", "threshold")
        constraints = [
            models.UniqueConstraint(fields=("shop", "name"), name="loyalty_tier_name_per_shop"),
            models.UniqueConstraint(fields=("shop", "threshold"), name="loyalty_tier_threshold_per_shop"),
        ]

    def __str__(self):
        return f"{self.name} (from {self.threshold})"


class Perk(models.Model):
    """One perk of a viewer, from an award or a tier; used once (``used_at``, by
    ``order``), or withdrawn (a revoked award's unused perks)."""

    SHOP_PATH = "shop"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="perks")
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="perks")
    kind = models.CharField(max_length=16, choices=PerkKind.choices)
    percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    minutes = models.PositiveIntegerField(null=True, blank=True)
    award = models.ForeignKey(Award, on_delete=models.SET_NULL, null=True, blank=True, related_name="perks")
    tier = models.ForeignKey(Tier, on_delete=models.SET_NULL, null=True, blank=True, related_name="perks")
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    order = models.ForeignKey("orders.Order", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-granted_at", "pk")
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="percent_off") | Q(percent__isnull=False), name="loyalty_perk_percent_has_percent"
            ),
            models.CheckConstraint(
                condition=~Q(kind="early_access") | Q(minutes__isnull=False), name="loyalty_perk_early_has_minutes"
            ),
            # One perk per award and one per tier a viewer reached (tiers grant once).
            models.UniqueConstraint(
                fields=("award",), condition=Q(award__isnull=False), name="loyalty_one_perk_per_award"
            ),
            models.UniqueConstraint(
                fields=("user", "tier"), condition=Q(tier__isnull=False), name="loyalty_one_perk_per_user_tier"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} for {self.user_id}"
