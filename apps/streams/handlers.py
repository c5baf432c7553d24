"""Spine declarations of the streams app, and its handlers of lower apps' events."""

from creatorcommerce.spine.fanout import coalesce
from creatorcommerce.spine.registry import handler

from .services import pins_refresh

coalesce("deal.changed", key=lambda payload: payload["deal_id"])

# What a pin shows of its SKU and product (stream_pins): a change there is a pin change.
PINNED_PRODUCT_FIELDS = {"title", "image_url"}


@handler("sku.updated", "sku.deleted", "product.updated", name="apps.streams.handlers.pins_follow_catalog")
def pins_follow_catalog(event):
    """A pinned SKU renamed, limited, deleted, or its product renamed in the catalog: the
    pages of the streams that pin it get their pins again (``pins.changed``)."""
    payload = event.payload
    if event.type == "sku.updated":
        pins_refresh(sku_ids=[payload["sku_id"]])
    elif event.type == "sku.deleted":
        pins_refresh(shop_id=payload["shop"])
    elif PINNED_PRODUCT_FIELDS & set(payload["changed"]):
        pins_refresh(product_id=payload["product"])
