"""Spine declarations of the streams app."""

from creatorcommerce.spine.fanout import coalesce

coalesce("deal.changed", key=lambda payload: payload["deal_id"])
