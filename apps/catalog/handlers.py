"""Spine declarations of the catalog app."""

from creatorcommerce.soldout import units_counter
from creatorcommerce.spine.fanout import coalesce

# Stock counts are absolute and versioned per stock row: during a sell-out only the newest
# count of each row needs to reach the viewers' sockets.
coalesce("stock.changed", key=lambda payload: payload["level"])

# Every web process keeps each stock row's last count, to answer a sold-out buy without the
# database (creatorcommerce/soldout.py; "stock" is the buy's claim source of a stock row).
units_counter("stock.changed", source="stock", read=lambda p: (p["level"], p["available"], p["version"], None))
