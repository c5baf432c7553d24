"""Spine declarations of the catalog app."""

from creatorcommerce.spine.fanout import coalesce

# Stock counts are absolute and versioned: during a sell-out only the newest per SKU needs
# to reach the viewers' sockets.
coalesce("stock.changed", key=lambda payload: payload["sku_id"])
