from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q


class PaymentMethod(models.Model):
    """A gateway token saved once by a buyer, so later buys are one tap."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="payment_methods")
    token = models.CharField(max_length=255, help_text="The gateway's reusable token; never card data.")
    brand = models.CharField(max_length=32, blank=True)
    last4 = models.CharField(max_length=4, blank=True)
    is_default = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-is_default", "-created_at")
        constraints = [
            models.UniqueConstraint(fields=("user",), condition=Q(is_default=True), name="orders_one_default_pm"),
        ]

    def __str__(self):
        return f"{self.brand or 'card'} ···{self.last4}"


class Address(models.Model):
    """The buyer's shipping address (one per buyer)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="address")
    name = models.CharField(max_length=120)
    line1 = models.CharField(max_length=200)
    line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100)
    region = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "addresses"

    def __str__(self):
        return f"{self.name}, {self.city} ({self.country})"


class Order(models.Model):
    """A buy. Created as ``reserved`` (stock taken) and confirmed as ``paid`` once the
    payment is authorised; ``declined`` and ``expired`` orders have given their stock back.
    On an edge node whose gateway cannot be reached, a small buy is ``accepted_offline``
    instead (sold, receipt signed, payment pending) and becomes ``paid`` when the gateway
    answers again, or ``capture_declined`` (still sold: the creator decides) when the card
    is refused then (docs/buying.md, "Offline selling")."""

    SHOP_PATH = "shop"

    class Status(models.TextChoices):
        RESERVED = "reserved", "Reserved (payment pending)"
        PAID = "paid", "Paid"
        DECLINED = "declined", "Payment declined"
        EXPIRED = "expired", "Reservation expired"
        REFUNDED = "refunded", "Refunded"
        # The gateway could not be reached: stock given back, the key free for a retry.
        FAILED = "failed", "Payment failed (gateway unavailable)"
        # An edge node accepted it with the gateway unreachable, under OFFLINE_FLOOR_LIMIT:
        # the units are sold and the receipt signed; the payment is taken later.
        ACCEPTED_OFFLINE = "accepted_offline", "Accepted offline (capture pending)"
        # That later payment was refused: the units stay sold, the creator decides.
        CAPTURE_DECLINED = "capture_declined", "Capture declined (accepted offline)"

    class PaymentStatus(models.TextChoices):
        NONE = "none", "None"
        AUTHORIZED = "authorized", "Authorized"
        CAPTURED = "captured", "Captured"
        VOIDED = "voided", "Voided"
        REFUNDED = "refunded", "Refunded"
        # Accepted offline, not authorised yet; and refused when it was (docs/buying.md).
        PENDING = "pending", "Pending (accepted offline)"
        DECLINED = "declined", "Declined at the later capture"

    class Fulfilment(models.TextChoices):
        DELIVERY = "delivery", "Delivery"
        PICKUP = "pickup", "Pickup at a venue"

    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    shop = models.ForeignKey("accounts.Shop", on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RESERVED, db_index=True)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    # The buyer's Idempotency-Key: unique per buyer, so a retry can never create a second order.
    idempotency_key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    stream = models.ForeignKey(
        "streams.Stream", null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    payment_method = models.ForeignKey(PaymentMethod, null=True, blank=True, on_delete=models.SET_NULL)
    payment_status = models.CharField(max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.NONE)
    payment_reference = models.CharField(max_length=128, blank=True)
    capture_reference = models.CharField(max_length=128, blank=True)
    receipt = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # A copy of the buyer's Address as it was at the buy (written by the reserve step, in
    # the same INSERT as the order): the creator ships to this, whatever the buyer changes
    # later. Empty on orders placed before the copy existed (docs/buying.md).
    shipping_name = models.CharField(max_length=120, blank=True, default="")
    shipping_line1 = models.CharField(max_length=200, blank=True, default="")
    shipping_line2 = models.CharField(max_length=200, blank=True, default="")
    shipping_city = models.CharField(max_length=100, blank=True, default="")
    shipping_region = models.CharField(max_length=100, blank=True, default="")
    shipping_postal_code = models.CharField(max_length=20, blank=True, default="")
    shipping_country = models.CharField(max_length=2, blank=True, default="", help_text="ISO 3166-1 alpha-2")
    # Set by order_refund: the gateway's refund (or void) id, and when.
    refund_reference = models.CharField(max_length=128, blank=True, default="")
    refunded_at = models.DateTimeField(null=True, blank=True)
    # The counters the buy consumed ("coupon:<id>", "geo_offer:<id>": a coupon's single use,
    # a geo offer's cap; apps.pricing.claims), given back when the reservation is released
    # (declined, failed, expired), not on a refund (docs/buying.md, "Coupons").
    redemptions = models.JSONField(default=list, blank=True)
    # How the buyer gets the goods (docs/buying.md, "Pickup at a venue"): shipped to the
    # address copied above, or picked up at ``pickup_location`` (a venue of the shop, whose
    # own stock rows the lines took their units from).
    fulfilment = models.CharField(max_length=16, choices=Fulfilment.choices, default=Fulfilment.DELIVERY)
    pickup_location = models.ForeignKey(
        "catalog.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="pickup_orders"
    )
    # The shop's shipping fee as the buy charged it (0 for a pickup), and how offers changed
    # it (a free-shipping perk: [{"source", "id", "label", "amount"}]); ``total`` includes
    # both (docs/pricing.md, "Shipping").
    shipping_fee = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))
    shipping_adjustments = models.JSONField(default=list, blank=True)
    # Offline selling on an edge node (docs/buying.md, "Offline selling"): when the order was
    # accepted without the gateway (null for every other order), and the later capture's
    # attempts, next try (backed off while the gateway stays unreachable) and last error.
    offline_accepted_at = models.DateTimeField(null=True, blank=True)
    capture_attempts = models.PositiveIntegerField(default=0)
    capture_next_at = models.DateTimeField(null=True, blank=True)
    capture_error = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            # The capture sweep's queue: accepted-offline orders by their next try.
            models.Index(
                fields=("capture_next_at",), condition=Q(status="accepted_offline"), name="orders_offline_capture_due"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=("buyer", "idempotency_key"), condition=~Q(status="failed"), name="orders_one_order_per_key"
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="orders_total_not_negative"),
            models.CheckConstraint(
                condition=Q(fulfilment="delivery", pickup_location__isnull=True)
                | Q(fulfilment="pickup", pickup_location__isnull=False),
                name="orders_pickup_has_location",
            ),
        ]

    def __str__(self):
        return f"Order {self.pk} ({self.status})"

    @property
    def shipping_total(self) -> Decimal:
        """What the order charged for shipping: the fee and its adjustments."""
        return self.shipping_fee + sum((Decimal(a["amount"]) for a in self.shipping_adjustments), Decimal("0.00"))

    SHIPPING_FIELDS = ("name", "line1", "line2", "city", "region", "postal_code", "country")

    @property
    def shipping_address(self) -> dict | None:
        """The copy of the address, shaped like ``GET /api/v1/me/address/``; None when the
        order has none (placed before the copy existed)."""
        if not self.shipping_line1:
            return None
        return {name: getattr(self, f"shipping_{name}") for name in self.SHIPPING_FIELDS}


class OrderLine(models.Model):
    SHOP_PATH = "order__shop"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.ForeignKey("catalog.SKU", on_delete=models.PROTECT, related_name="+")
    stock_level = models.ForeignKey("catalog.StockLevel", on_delete=models.PROTECT, related_name="+")
    sku_code = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    # How the line's price came about (docs/buying.md, "Prices"): ``unit_price`` is the list
    # price, ``adjustments`` one {"source", "id", "label", "amount"} per applied offer
    # (negative for a discount), ``total`` = unit_price x quantity + their amounts.
    adjustments = models.JSONField(default=list, blank=True)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    # Where the units came from: "" for ``stock_level``, "<source>:<id>" for an offer's own
    # units (a flash deal's: "deal:<id>"); a release or a restocking refund gives them back
    # there (apps.pricing.claims).
    unit_source = models.CharField(max_length=64, blank=True, default="")
    # The per-buyer limit the units count against ("sku:<id>", "deal:<id>", ...), given back
    # with the units on a release; "" when no limit applied.
    allowance_key = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        # Lines in the order they were bought in: the API, receipts and replays list them so.
        ordering = ("pk",)
        constraints = [models.CheckConstraint(condition=Q(quantity__gte=1), name="orders_line_quantity_positive")]
        indexes = [
            # Which lines took an offer's units (a deal with orders cannot be deleted).
            models.Index(fields=("unit_source",), condition=~Q(unit_source=""), name="orders_line_unit_source"),
        ]

    def __str__(self):
        return f"{self.quantity} x {self.sku_code}"

    @property
    def subtotal(self):
        return self.unit_price * self.quantity


class IdempotencyRecord(models.Model):
    """The stored answer to a keyed request that did not create an order (sold out, over
    the limit, ...), so that a retry with the same key gets the same answer. Requests that
    created an order are answered from the order itself."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("user", "key"), name="orders_one_record_per_key")]

    def __str__(self):
        return f"{self.key} -> {self.status_code}"
