"""The co-purchase model of a shop (docs/personalization.md): item-item statistics only.

``ItemModel`` is one row per shop, the header of its current model (its version, when and
from how much it was trained); ``Neighbour`` holds each item's top-k neighbours, with their
similarity. Both are rewritten together by ``services.model_train`` in one transaction. No
column names a viewer: what the model stores could be shown to anyone.
"""

from __future__ import annotations

from django.db import models

from apps.accounts.models import Shop
from apps.catalog.models import SKU


class ItemModel(models.Model):
    SHOP_PATH = "shop"

    shop = models.OneToOneField(Shop, on_delete=models.CASCADE, related_name="item_model")
    # Bumped by every training: a loaded copy of an older version is out of date.
    version = models.PositiveIntegerField(default=0)
    trained_at = models.DateTimeField()
    # What the training saw (counts only): sold orders in the window, distinct buyers, items
    # with at least one neighbour, neighbour rows written, and the newest order's id (a beat
    # run with no order past it skips the shop until the model is PERSONALIZATION_MAX_AGE_HOURS old).
    orders = models.PositiveIntegerField(default=0)
    buyers = models.PositiveIntegerField(default=0)
    items = models.PositiveIntegerField(default=0)
    pairs = models.PositiveIntegerField(default=0)
    last_order_id = models.BigIntegerField(default=0)
    half_life_days = models.FloatField()
    window_days = models.PositiveIntegerField()

    class Meta:
        verbose_name = "co-purchase model"

    def __str__(self):
        return f"{self.shop} v{self.version} ({self.items} items)"


class Neighbour(models.Model):
    """``neighbour`` is the ``rank``-th most similar item to ``sku`` (0 = most similar)."""

    SHOP_PATH = "model__shop"

    model = models.ForeignKey(ItemModel, on_delete=models.CASCADE, related_name="neighbours")
    sku = models.ForeignKey(SKU, on_delete=models.CASCADE, related_name="+")
    neighbour = models.ForeignKey(SKU, on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveSmallIntegerField()
    # Cosine similarity of the two items' decayed co-purchase counts, in (0, 1].
    score = models.FloatField()

    class Meta:
        ordering = ("model", "sku", "rank")
        constraints = [
            models.UniqueConstraint(fields=("model", "sku", "rank"), name="personalization_one_neighbour_per_rank"),
            models.UniqueConstraint(fields=("model", "sku", "neighbour"), name="personalization_one_pair"),
        ]

    def __str__(self):
        return f"{self.sku_id} -> {self.neighbour_id} ({self.score:.3f})"
