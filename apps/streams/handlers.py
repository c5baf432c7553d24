"""Spine declarations of the streams app, and its handlers of lower apps' events."""

from datetime import datetime

from creatorcommerce.soldout import units_counter
from creatorcommerce.spine.fanout import coalesce
from creatorcommerce.spine.registry import handler

from .services import pins_refresh

coalesce("deal.changed", key=lambda payload: payload["deal_id"])


def _deal_count(payload: dict) -> tuple[int, int | None, int, float | None]:
    """A deal's units while it is open (``deal`` is null once closed: no source of units),
    and its end: past ``ends_at`` a buy no longer takes the deal's units."""
    deal = payload["deal"]
    if deal is None:
        return payload["deal_id"], None, payload["version"], None
    return (
        payload["deal_id"],
        payload["remaining"],
        payload["version"],
        datetime.fromisoformat(deal["ends_at"]).timestamp(),
    )


# Every web process keeps each open deal's units left (creatorcommerce/soldout.py; "deal" is
# the buy's claim source of a deal's units).
for _type in ("deal.opened", "deal.changed", "deal.closed"):
    units_counter(_type, source="deal", read=_deal_count)

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
