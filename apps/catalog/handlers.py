"""Spine declarations of the catalog app."""

from creatorcommerce.spine.fanout import coalesce

# Stock counts are absolute and versioned per stock row: during a sell-out only the newest
# count of each row needs to reach the viewers' sockets.
coalesce("stock.changed", key=lambda payload: payload["level"])
