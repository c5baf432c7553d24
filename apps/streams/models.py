import secrets
import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from apps.accounts.models import Shop
from apps.catalog.models import SKU, Location


def _ingest_token() -> str:
    return secrets.token_urlsafe(24)


class Stream(models.Model):
    """A creator's live show (a drop): scheduled, then live, then ended; or, never having
    started, cancelled (docs/streams.md, "Creators' API for drops")."""

    SHOP_PATH = "shop"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        LIVE = "live", "Live"
        ENDED = "ended", "Ended"
        CANCELLED = "cancelled", "Cancelled"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="streams")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    starts_at = models.DateTimeField(help_text="Scheduled start; beat starts the stream then.")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Optional scheduled end.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED, db_index=True)
    hls_url = models.URLField(blank=True, help_text="HLS playback URL (.m3u8) from your media server.")
    poster_url = models.URLField(blank=True)
    ingest_token = models.CharField(
        max_length=64, default=_ingest_token, help_text="Your encoder publishes with this token (keep it secret)."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # A calendar's view of the drop (docs/streams.md, "Creators' API for drops"): one UID for
    # life, and a SEQUENCE that the streams services raise with every change of the start,
    # the end, the title, and on cancelling.
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sequence = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("starts_at",)
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")),
                name="streams_ends_after_start",
            )
        ]

    def __str__(self):
        return self.title

    @property
    def media_path(self) -> str:
        """The path on the media server (MediaMTX) this stream publishes to and is read from."""
        return f"live/{self.pk}"

    # Its rules (an end after the start, what a live, ended or cancelled drop may still
    # change) are the services' (``services.stream_problems``), which the admin's form shows.


class Pin(models.Model):
    """A product shown on the stream, in order."""

    SHOP_PATH = "stream__shop"

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="pins")
    sku = models.ForeignKey(SKU, on_delete=models.CASCADE, related_name="pins")
    position = models.PositiveIntegerField(default=0)
    pinned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("position", "id")
        constraints = [models.UniqueConstraint(fields=("stream", "sku"), name="streams_pin_once")]

    def __str__(self):
        return f"{self.sku} on {self.stream}"


class FlashDeal(models.Model):
    """A time-boxed price on one SKU in one stream, with its own stock.

    Opening the deal moves ``quantity`` units out of the location's stock into
    ``remaining``; buys in the stream take from ``remaining`` with the same conditional
    UPDATE as any stock; closing gives what is left back to the location.
    """

    SHOP_PATH = "stream__shop"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="deals")
    # PROTECT: deleting a SKU must not silently take its deals (an open one holds units taken
    # from stock, and no control room or viewer would be told). Delete the deal first.
    sku = models.ForeignKey(SKU, on_delete=models.PROTECT, related_name="deals")
    location = models.ForeignKey(
        Location,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        help_text="Where the deal's units come from; empty for the default location.",
    )
    price = models.DecimalField(max_digits=12, decimal_places=2)
    quantity = models.PositiveIntegerField(help_text="Units set aside for the deal.")
    remaining = models.IntegerField(default=0)
    # Units sold before it opened to holders of early access (docs/pricing.md, "Early
    # access"): taken off the shelf at the buy and counted here, so that the deal never sells
    # more than ``quantity`` in all (opening sets aside ``quantity - early_sold``).
    early_sold = models.PositiveIntegerField(default=0)
    per_buyer_limit = models.PositiveIntegerField(null=True, blank=True)
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED, db_index=True)
    version = models.BigIntegerField(default=0)

    class Meta:
        ordering = ("opens_at",)
        constraints = [
            models.CheckConstraint(condition=Q(remaining__gte=0), name="streams_deal_remaining_not_negative"),
            models.CheckConstraint(
                condition=Q(early_sold__lte=models.F("quantity")), name="streams_deal_early_within_quantity"
            ),
            models.CheckConstraint(
                condition=Q(closes_at__gt=models.F("opens_at")), name="streams_deal_closes_after_opening"
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="streams_deal_price_not_negative"),
            models.UniqueConstraint(
                fields=("stream", "sku"), condition=Q(status="open"), name="streams_one_open_deal_per_sku"
            ),
        ]

    def __str__(self):
        return f"{self.sku} at {self.price} ({self.status})"

    def clean(self):
        import datetime

        errors = {}
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            errors["closes_at"] = "A deal cannot close before it opens."
        if self.sku_id and self.stream_id and self.sku.shop_id != self.stream.shop_id:
            errors["sku"] = "The SKU must belong to the stream's shop."
        if self.price is not None and self.price < 0:
            errors["price"] = "The price cannot be negative."
        if self.pk:

            def _same(before, after) -> bool:
                # Times to the second: the admin's date and time inputs drop microseconds.
                if isinstance(before, datetime.datetime) and isinstance(after, datetime.datetime):
                    return before.replace(microsecond=0) == after.replace(microsecond=0)
                return before == after

            fixed = ("price", "quantity", "sku_id", "location_id", "opens_at", "per_buyer_limit")
            before = FlashDeal.objects.filter(pk=self.pk).values("status", "closes_at", *fixed).first()
            if before and before["status"] != self.Status.SCHEDULED:
                # Its units are set aside (or given back) at its location at its price: only
                # an open deal's closing time may still move. The admin saves nothing else
                # of a deal that is not scheduled, so refuse rather than drop the change.
                moved = [name for name in fixed if not _same(before[name], getattr(self, name))]
                if before["status"] == self.Status.CLOSED and not _same(before["closes_at"], self.closes_at):
                    moved.append("closes_at")
                if moved:
                    errors["__all__"] = (
                        "An open deal can only get a new closing time, and a closed deal cannot be changed "
                        f"({', '.join(name.removesuffix('_id') for name in moved)}); "
                        "close it and schedule a new one."
                    )
        if self.stream_id and self.sku_id and self.opens_at and self.closes_at:
            overlapping = (
                FlashDeal.objects.filter(
                    stream_id=self.stream_id,
                    sku_id=self.sku_id,
                    opens_at__lt=self.closes_at,
                    closes_at__gt=self.opens_at,
                )
                .exclude(status=self.Status.CLOSED)
                .exclude(pk=self.pk)
            )
            if overlapping.exists():
                errors["opens_at"] = "Another deal on this SKU in this stream overlaps this time."
        if self.quantity and self.sku_id and self.status == self.Status.SCHEDULED:
            from apps.catalog.models import StockLevel

            level = StockLevel.objects.filter(
                sku_id=self.sku_id,
                **({"location_id": self.location_id} if self.location_id else {"location__is_default": True}),
            ).first()
            held = level.available if level else 0
            if self.quantity > held:
                errors["quantity"] = f"The location holds only {held} of this SKU."
        if errors:
            raise ValidationError(errors)


class Annotation(models.Model):
    """A note at an offset into the stream, optionally about a SKU: the shoppable replay."""

    SHOP_PATH = "stream__shop"

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="annotations")
    offset_seconds = models.PositiveIntegerField()
    text = models.CharField(max_length=280)
    sku = models.ForeignKey(SKU, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ("offset_seconds",)

    def __str__(self):
        return f"{self.offset_seconds}s: {self.text[:40]}"
