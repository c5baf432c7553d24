"""The catalog's events and their payloads (docs/events.md; creatorcommerce/spine/event_schema.py)."""

from creatorcommerce.spine.event_schema import BOOL, DECIMAL, INT, STR, ListOf, Nullable, Obj, declare

# Absolute units left on one stock row, with the row's version (consumers drop older ones).
declare(
    "stock.changed",
    Obj(sku=STR, sku_id=INT, shop=INT, level=INT, available=INT, version=INT),
)
declare("product.created", Obj(product=INT, shop=INT, skus=ListOf(STR)))
# ``source``: "creator" (the API), "admin" (the catalog admin), or "webhook:<price source id>".
declare(
    "price.changed",
    Obj(sku=STR, sku_id=INT, shop=INT, price=DECIMAL, old_price=DECIMAL, currency=STR, source=STR),
)

# A SKU as the admin saved it; ``changed`` (sku.updated only) names the fields that changed,
# ``price`` and ``currency`` come with sku.created only (price changes are price.changed).
_SKU = {
    "sku": STR,
    "sku_id": INT,
    "shop": INT,
    "product": INT,
    "title": STR,
    "per_buyer_limit": Nullable(INT),
    "is_active": BOOL,
}
declare("sku.created", Obj(**_SKU, price=DECIMAL, currency=STR))
declare("sku.updated", Obj(**_SKU, changed=ListOf(STR)))
declare("sku.deleted", Obj(sku=STR, sku_id=INT, shop=INT, product=INT))
declare(
    "product.updated",
    Obj(product=INT, shop=INT, title=STR, image_url=STR, is_active=BOOL, changed=ListOf(STR)),
)
declare("product.deleted", Obj(product=INT, shop=INT))

# A smart bundle as storefronts show it (apps.catalog.selectors.bundle_card), sent when a
# creator saves it and when a price change of one of its SKUs re-prices it.
_BUNDLE = {
    "bundle": INT,
    "shop": INT,
    "label": STR,
    "anchor": STR,
    "anchor_id": INT,
    "skus": ListOf(STR),
    "titles": ListOf(STR),
    "price": DECIMAL,
    "list_price": DECIMAL,
    "saving": DECIMAL,
    "currency": STR,
    "trigger": STR,
    "threshold": Nullable(INT),
    "venue": Nullable(INT),
    "is_active": BOOL,
}
declare("bundle.created", Obj(**_BUNDLE))
declare("bundle.updated", Obj(**_BUNDLE))
declare("bundle.deleted", Obj(bundle=INT, shop=INT, anchor_id=INT))
