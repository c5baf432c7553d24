import base64
import secrets
import uuid
from decimal import Decimal

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from apps.accounts.models import Shop

CURRENCY_VALIDATOR = RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 code, e.g. USD.")
SKU_CODE_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
    "Letters, digits, '.', '_' and '-' only (max 64), starting with a letter or digit.",
)


class Location(models.Model):
    """Where stock is held: a warehouse, or a pop-up venue (venues get geofences later)."""

    SHOP_PATH = "shop"

    class Kind(models.TextChoices):
        WAREHOUSE = "warehouse", "Warehouse"
        VENUE = "venue", "Pop-up venue"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="locations")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.WAREHOUSE)
    is_default = models.BooleanField(default=False, help_text="Buys take stock from the shop's default location.")
    address = models.CharField(max_length=255, blank=True)
    # The node that owns this location's stock (docs/edge.md, "Who owns what"): blank for
    # this node; on a cloud, an edge's NODE_ID once that edge took the venue's allocation.
    # stock_adjust refuses changes to an owned location's rows (409 stock_owned_by_edge).
    owner_node = models.CharField(
        max_length=64, blank=True, default="", editable=False, help_text="The edge node that owns this stock."
    )

    class Meta:
        ordering = ("shop", "name")
        constraints = [
            models.UniqueConstraint(fields=("shop", "name"), name="catalog_location_name_per_shop"),
            models.UniqueConstraint(
                fields=("shop",), condition=Q(is_default=True), name="catalog_one_default_location_per_shop"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()})"


class Product(models.Model):
    SHOP_PATH = "shop"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="products")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    image_url = models.URLField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self):
        return self.title


class SKU(models.Model):
    """A sellable variant. ``code`` is unique within a shop."""

    SHOP_PATH = "shop"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="skus")
    # Denormalised from the product so that (shop, code) can be unique and looked up in one index.
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="skus")
    code = models.CharField(max_length=64, validators=[SKU_CODE_VALIDATOR])
    title = models.CharField(max_length=200, blank=True, help_text="Variant name; blank uses the product's title.")
    price = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0.00"))])
    currency = models.CharField(max_length=3, default="USD", validators=[CURRENCY_VALIDATOR])
    per_buyer_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most units one buyer may buy in total; empty for no limit."
    )
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "SKU"
        ordering = ("code",)
        constraints = [
            models.UniqueConstraint(fields=("shop", "code"), name="catalog_sku_code_per_shop"),
            models.CheckConstraint(condition=Q(price__gte=0), name="catalog_sku_price_not_negative"),
            models.CheckConstraint(
                condition=Q(per_buyer_limit__isnull=True) | Q(per_buyer_limit__gte=1),
                name="catalog_sku_limit_positive",
            ),
        ]
        indexes = [models.Index(fields=("code",), name="catalog_sku_code_idx")]

    def __str__(self):
        return self.code

    @property
    def display_title(self) -> str:
        return self.title or self.product.title


class StockLevel(models.Model):
    """Units of one SKU at one location that can still be sold.

    ``available`` only changes through conditional UPDATEs in ``apps.catalog.stock``
    (``available >= n`` in the WHERE clause); the CHECK constraint makes a negative value
    impossible even for a buggy writer. Units reserved by pending orders or set aside for a
    flash deal are already subtracted.
    """

    SHOP_PATH = "sku__shop"

    sku = models.ForeignKey(SKU, on_delete=models.CASCADE, related_name="stock_levels")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="stock_levels")
    available = models.IntegerField(default=0)
    # Bumped by every change, in the same UPDATE: consumers keep the highest version of a
    # count, so a late message can never overwrite a newer value.
    version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("sku", "location"), name="catalog_stock_per_sku_location"),
            models.CheckConstraint(condition=Q(available__gte=0), name="catalog_stock_never_negative"),
        ]

    def __str__(self):
        return f"{self.sku.code} @ {self.location.name}: {self.available}"


class BuyerAllowance(models.Model):
    """Units one buyer holds (reserved or bought) against one per-buyer limit.

    ``key`` names the limit (docs/pricing.md, "Claims"): ``sku:<id>`` for a SKU's own
    limit, ``deal:<id>`` for a flash deal's; the offers to come count under their own keys.
    Updated by one conditional upsert in the same transaction that takes the units, so
    that parallel requests from one buyer cannot pass the limit together.
    """

    buyer = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64)
    units = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("buyer", "key"), name="catalog_allowance_per_buyer_key"),
            models.CheckConstraint(condition=Q(units__gte=0), name="catalog_allowance_not_negative"),
        ]

    def __str__(self):
        return f"{self.buyer_id} holds {self.units} under {self.key}"


def _new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class PriceSource(models.Model):
    """A price tracker that may change this shop's prices through ``POST /hooks/price/``.

    Deliveries are signed per Standard Webhooks with ``secret``; the tracker names itself
    with ``?source=<public_id>``.
    """

    SHOP_PATH = "shop"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="price_sources")
    name = models.CharField(max_length=120)
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    secret = models.CharField(max_length=100, default=_new_webhook_secret, help_text="whsec_... (base64)")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name


class PriceMapping(models.Model):
    """Which of our SKUs a tracker's item id stands for."""

    SHOP_PATH = "source__shop"

    source = models.ForeignKey(PriceSource, on_delete=models.CASCADE, related_name="mappings")
    external_id = models.CharField(max_length=200)
    sku = models.ForeignKey(SKU, on_delete=models.CASCADE, related_name="price_mappings")

    class Meta:
        constraints = [models.UniqueConstraint(fields=("source", "external_id"), name="catalog_mapping_per_source")]

    def __str__(self):
        return f"{self.external_id} -> {self.sku_id}"


class WebhookDelivery(models.Model):
    """A webhook-id already processed for a source: a repeat is answered 200 and ignored."""

    source = models.ForeignKey(PriceSource, on_delete=models.CASCADE, related_name="deliveries")
    webhook_id = models.CharField(max_length=200)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    outcome = models.CharField(max_length=32)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=("source", "webhook_id"), name="catalog_delivery_once")]

    def __str__(self):
        return self.webhook_id


class BundleRule(models.Model):
    """A smart bundle (docs/geofences.md): one unit of the ``anchor`` and one of each
    complementary SKU (``items``) for a bundle ``price``, or ``percent`` off their list
    prices (exactly one of the two). It is offered ``always``, or only while the anchor's
    stock at ``venue`` (a location of kind venue) is at or below ``threshold`` (``low_stock``)."""

    SHOP_PATH = "shop"

    class Trigger(models.TextChoices):
        ALWAYS = "always", "Always"
        LOW_STOCK = "low_stock", "When the anchor runs low at the venue"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="bundle_rules")
    label = models.CharField(max_length=120)
    anchor = models.ForeignKey(SKU, on_delete=models.CASCADE, related_name="anchored_bundles")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.ALWAYS)
    threshold = models.PositiveIntegerField(
        null=True, blank=True, help_text="low_stock: offered while the anchor's units at the venue are at most this."
    )
    venue = models.ForeignKey(
        Location,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="bundle_rules",
        limit_choices_to={"kind": Location.Kind.VENUE},
        help_text="low_stock: the venue whose on-site stock of the anchor is watched.",
    )
    price = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.00"))],
        help_text="The whole bundle's price (or give a percent off).",
    )
    percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Percent off each SKU's list price (or give a bundle price).",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("shop", "label")
        constraints = [
            models.CheckConstraint(
                condition=(Q(price__isnull=False) & Q(percent__isnull=True))
                | (Q(price__isnull=True) & Q(percent__isnull=False)),
                name="catalog_bundle_price_or_percent",
            ),
            models.CheckConstraint(condition=Q(price__isnull=True) | Q(price__gte=0), name="catalog_bundle_price_ok"),
            models.CheckConstraint(
                condition=Q(percent__isnull=True) | (Q(percent__gt=0) & Q(percent__lte=100)),
                name="catalog_bundle_percent_range",
            ),
            models.CheckConstraint(
                condition=Q(trigger="always", threshold__isnull=True, venue__isnull=True)
                | Q(trigger="low_stock", threshold__isnull=False, venue__isnull=False),
                name="catalog_bundle_trigger_fields",
            ),
        ]

    def __str__(self):
        return self.label


class BundleItem(models.Model):
    """A complementary SKU of a bundle: one unit of it comes with the anchor."""

    SHOP_PATH = "rule__shop"

    rule = models.ForeignKey(BundleRule, on_delete=models.CASCADE, related_name="items")
    sku = models.ForeignKey(SKU, on_delete=models.CASCADE, related_name="bundle_items")

    class Meta:
        ordering = ("pk",)
        constraints = [models.UniqueConstraint(fields=("rule", "sku"), name="catalog_bundle_item_once")]

    def __str__(self):
        return f"{self.rule_id}: {self.sku_id}"
