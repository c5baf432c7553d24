"""Pop-up venues, their fences, viewers' presence, and geo offers with running-time
coupons (docs/geofences.md).

A venue is a catalog ``Location`` of kind ``venue`` with a fence: the ``Venue`` row shares
the location's primary key, so a venue's id is its location's id everywhere (the venue's
on-site stock is that location's stock rows).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from apps.accounts.models import Shop, validate_time_zone
from apps.catalog.models import SKU, Location

from .fields import GeometryField


class Venue(models.Model):
    """The fence and hours of a pop-up venue (a ``Location`` of kind ``venue``).

    The fence is a GeoJSON Polygon or MultiPolygon (``fence``, holes allowed), or a circle
    (``center_lon``/``center_lat`` and ``radius_m``); exactly one of the two is set.
    """

    SHOP_PATH = "location__shop"

    class FenceKind(models.TextChoices):
        POLYGON = "polygon", "Polygon (drawn or pasted GeoJSON)"
        CIRCLE = "circle", "Circle (centre and radius)"

    location = models.OneToOneField(Location, on_delete=models.CASCADE, primary_key=True, related_name="venue")
    fence_kind = models.CharField(max_length=16, choices=FenceKind.choices, default=FenceKind.POLYGON)
    fence = GeometryField(null=True, blank=True, help_text="GeoJSON Polygon or MultiPolygon (lon, lat), holes allowed.")
    center_lon = models.FloatField(null=True, blank=True, validators=[MinValueValidator(-180), MaxValueValidator(180)])
    center_lat = models.FloatField(null=True, blank=True, validators=[MinValueValidator(-90), MaxValueValidator(90)])
    radius_m = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(50_000)],
        help_text="Circle radius in metres.",
    )
    time_zone = models.CharField(
        max_length=64, default="UTC", validators=[validate_time_zone], help_text="Opening hours are in this time zone."
    )
    dwell_seconds = models.PositiveIntegerField(
        default=300,
        validators=[MinValueValidator(10), MaxValueValidator(86_400)],
        help_text="A viewer inside this long has dwelled.",
    )
    announcement = models.CharField(max_length=280, blank=True, help_text="Pre-announcement of the micro-event.")
    announce_radius_m = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(50_000)],
        help_text="Announce to viewers this close (0: no announcement).",
    )
    event_starts_at = models.DateTimeField(
        null=True, blank=True, help_text="When the micro-event starts; announcements go out before it."
    )
    is_active = models.BooleanField(default=True)
    # Bumped by every change, in the same UPDATE: processes that cache prepared fences
    # compare it (docs/geofences.md, "Fence cache").
    version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("location",)
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(fence_kind="polygon", fence__isnull=False)
                    | Q(fence_kind="circle", center_lon__isnull=False, center_lat__isnull=False, radius_m__isnull=False)
                ),
                name="geofences_venue_fence_complete",
            ),
        ]

    def __str__(self):
        return str(self.location.name)

    def clean(self):
        """The fence's errors on the fields they concern (the admin's form shows them there):
        ``fence`` for a polygon, the centre and radius for a circle (docs/geofences.md)."""
        from django.core.exceptions import ValidationError

        from .exceptions import FenceUnsupported, InvalidFence
        from .services import fence_clean

        try:
            cleaned = fence_clean(
                fence_kind=self.fence_kind,
                fence=self.fence,
                center_lon=self.center_lon,
                center_lat=self.center_lat,
                radius_m=self.radius_m,
            )
        except (InvalidFence, FenceUnsupported) as exc:
            field = "fence" if self.fence_kind == self.FenceKind.POLYGON else "radius_m"
            if self.fence_kind == self.FenceKind.CIRCLE and "latitude" in exc.message:
                field = "center_lat"
            elif self.fence_kind == self.FenceKind.CIRCLE and ("longitude" in exc.message or "centre" in exc.message):
                field = "center_lon"
            raise ValidationError({field: ValidationError(exc.message, code=exc.code)}) from exc
        for key, value in cleaned.items():
            setattr(self, key, value)


class VenueHours(models.Model):
    """One opening interval of a venue, in the venue's time zone. ``closes`` before ``opens``
    runs past midnight into the next day. A venue with no rows is always open."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    SHOP_PATH = "venue__location__shop"

    venue = models.ForeignKey(Venue, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta:
        ordering = ("venue", "weekday", "opens")
        constraints = [models.CheckConstraint(condition=~Q(opens=F("closes")), name="geofences_hours_not_empty")]

    def __str__(self):
        return f"{self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"


class Presence(models.Model):
    """A viewer's state at a venue, kept server-side from their pings (docs/geofences.md,
    "Enter, exit, dwell"). Stored only with location consent; revoking deletes it."""

    class State(models.TextChoices):
        INSIDE = "inside", "Inside"
        OUTSIDE = "outside", "Outside"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="venue_presences")
    venue = models.ForeignKey(Venue, on_delete=models.CASCADE, related_name="presences")
    state = models.CharField(max_length=8, choices=State.choices)
    entered_at = models.DateTimeField(null=True, blank=True)
    dwelled_at = models.DateTimeField(null=True, blank=True)
    exited_at = models.DateTimeField(null=True, blank=True)
    last_ping_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=("user", "venue"), name="geofences_presence_per_user_venue")]
        indexes = [
            # The dwell beat: viewers inside who have not dwelled yet.
            models.Index(
                fields=("entered_at",),
                condition=Q(state="inside", dwelled_at__isnull=True),
                name="geofences_presence_dwell_due",
            )
        ]

    def __str__(self):
        return f"{self.user_id} {self.state} venue {self.venue_id}"


class Position(models.Model):
    """A viewer's last reported position (one row per viewer). Stored only with location
    consent; revoking deletes it."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="geo_position"
    )
    lat = models.FloatField()
    lon = models.FloatField()
    accuracy_m = models.FloatField()
    at = models.DateTimeField()

    def __str__(self):
        return f"{self.user_id} at {self.lat:.5f},{self.lon:.5f}"


class GeoOffer(models.Model):
    """On entering or dwelling at a venue, a viewer gets one coupon of this offer while it
    runs and its redemption cap lasts (docs/geofences.md, "Running-time coupons").

    The coupon's value runs down linearly from ``start_value`` to ``end_value`` over
    ``decay_minutes`` after issue, stepping once a minute, and it expires
    ``expires_minutes`` after issue.
    """

    SHOP_PATH = "shop"

    class Trigger(models.TextChoices):
        ENTER = "enter", "On entering the venue"
        DWELL = "dwell", "After dwelling at the venue"

    class Kind(models.TextChoices):
        PERCENT = "percent", "Percent off"
        AMOUNT = "amount", "Amount off"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="geo_offers")
    venue = models.ForeignKey(Venue, on_delete=models.CASCADE, related_name="offers")
    label = models.CharField(max_length=120)
    trigger = models.CharField(max_length=8, choices=Trigger.choices, default=Trigger.ENTER)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.PERCENT)
    sku = models.ForeignKey(
        SKU,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="geo_offers",
        help_text="Empty: the whole shop.",
    )
    start_value = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(0)])
    end_value = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(0)])
    decay_minutes = models.PositiveIntegerField(
        default=30,
        validators=[MaxValueValidator(10_080)],
        help_text="Minutes over which the value runs down (0: never).",
    )
    expires_minutes = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(525_600)], help_text="Minutes after issue."
    )
    cap = models.PositiveIntegerField(null=True, blank=True, help_text="Most redemptions in all (empty: no cap).")
    redemptions_left = models.IntegerField(null=True, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-starts_at", "pk")
        constraints = [
            models.CheckConstraint(condition=Q(end_value__lte=F("start_value")), name="geofences_offer_runs_down"),
            models.CheckConstraint(
                condition=~Q(kind="percent") | Q(start_value__lte=100), name="geofences_offer_percent_max_100"
            ),
            models.CheckConstraint(
                condition=Q(redemptions_left__isnull=True) | Q(redemptions_left__gte=0),
                name="geofences_offer_redemptions_never_negative",
            ),
        ]

    def __str__(self):
        return self.label


def _coupon_code() -> str:
    # 10 characters of an alphabet without look-alikes (0/O, 1/I/L): readable at a till.
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(10))


class Coupon(models.Model):
    """One viewer's coupon of a geo offer: single use, valued by the clock."""

    SHOP_PATH = "offer__shop"

    offer = models.ForeignKey(GeoOffer, on_delete=models.CASCADE, related_name="coupons")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="coupons")
    code = models.CharField(max_length=16, unique=True, default=_coupon_code)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    redeemed_at = models.DateTimeField(null=True, blank=True)
    order = models.ForeignKey(
        "orders.Order",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The order that redeemed it.",
    )

    class Meta:
        ordering = ("-issued_at", "pk")
        constraints = [models.UniqueConstraint(fields=("offer", "user"), name="geofences_one_coupon_per_offer_user")]

    def __str__(self):
        return self.code
