"""Smart bundles as offers (docs/pricing.md, "Bundles"; docs/geofences.md).

A bundle rule (apps.catalog.models.BundleRule) sells one unit of its anchor and one of each
complementary SKU for a bundle price or a percent off. It applies only when the request
names it (``"bundle": id`` in the buy's or the quote's body): then every line is one of its
SKUs at quantity 1, and each gets a ``Kind.PRICE`` offer (source ``bundle``) with its share
of the bundle's price (apps.catalog.bundles: split in proportion to list prices, the
rounding remainder on the anchor). The stacking policy lets a bundle price win over a deal
and keeps coupons off bundled lines. A bundle has no units of its own: the lines take units
from their stock rows (the default location's, or the pickup venue's), all or nothing, as
any multi-line buy.
"""

from __future__ import annotations

from apps.catalog.models import SKU
from apps.catalog.selectors import bundle_prices, bundle_rule_get, bundle_skus, bundle_trigger_holds

from .exceptions import BundleMismatch, BundleNotAvailable, BundleNotFound
from .offers import Kind, Offer
from .registry import offer_provider, shop_resolver


def bundle_request(*, bundle_id: int, shop: str | None, stream: int | None) -> tuple[list[tuple[str, int]], str]:
    """The lines of a request that names a bundle and no lines (one unit of each of its SKUs,
    the anchor first) and the slug of its shop. Raises BundleNotFound for an unknown or
    inactive bundle, or one of another shop than the one the request names."""
    rule = bundle_rule_get(bundle_id=bundle_id)
    if rule is None:
        raise BundleNotFound()
    if shop and rule.shop.slug != shop:
        raise BundleNotFound()
    if stream is not None and shop_resolver("stream")(stream) != rule.shop_id:
        raise BundleNotFound()
    return [(sku.code, 1) for sku in bundle_skus(rule)], rule.shop.slug


@offer_provider("bundle")
def bundle_offers(*, buyer, lines, context):
    """The named bundle's price offers, one per line; raises BundleNotFound (unknown,
    inactive, another shop's), BundleMismatch (the lines are not exactly its SKUs, one
    unit each) or BundleNotAvailable (a low-stock bundle whose anchor is not low now)."""
    if context.bundle is None:
        return []
    rule = bundle_rule_get(bundle_id=context.bundle)
    if rule is None:
        raise BundleNotFound()
    skus = bundle_skus(rule)
    by_sku = {line.sku_id: line for line in lines}
    if set(by_sku) != {sku.pk for sku in skus} or any(line.quantity != 1 for line in lines):
        if SKU.objects.filter(pk__in=list(by_sku)).exclude(shop_id=rule.shop_id).exists():
            raise BundleNotFound()
        raise BundleMismatch()
    if not bundle_trigger_holds(rule):
        raise BundleNotAvailable()
    # The list prices the request priced with (the buy's own read), so the shares add up
    # to the bundle price over exactly the lines' list prices.
    totals = bundle_prices(rule, [by_sku[sku.pk].unit_price for sku in skus])
    return [
        Offer("bundle", rule.pk, rule.label, Kind.PRICE, unit_price, sku_id=sku.pk)
        for sku, unit_price in zip(skus, totals["unit_prices"], strict=True)
    ]
