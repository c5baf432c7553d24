"""The catalog's events and their payloads (docs/events.md; creatorcommerce/spine/event_schema.py)."""

from creatorcommerce.spine.event_schema import DECIMAL, INT, STR, ListOf, Obj, declare

# Absolute units left on one stock row, with the row's version (consumers drop older ones).
declare(
    "stock.changed",
    Obj(sku=STR, sku_id=INT, shop=INT, level=INT, available=INT, version=INT),
)
declare("product.created", Obj(product=INT, shop=INT, skus=ListOf(STR)))
# ``source``: "creator", or "webhook:<price source id>".
declare(
    "price.changed",
    Obj(sku=STR, sku_id=INT, shop=INT, price=DECIMAL, old_price=DECIMAL, currency=STR, source=STR),
)
