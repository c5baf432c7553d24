"""Reads of the catalog."""

from __future__ import annotations

from django.db.models import F, OuterRef, Subquery

from .exceptions import AmbiguousSku, SkuNotFound
from .models import SKU, StockLevel


def _default_level():
    return StockLevel.objects.filter(sku=OuterRef("pk"), location__is_default=True, location__shop=OuterRef("shop"))


def sku_for_buy(*, code: str, shop_slug: str | None = None, shop_id: int | None = None) -> dict:
    """What the buy path needs about one active SKU, in one query: price, limit, shop and
    the id and count of its stock at the shop's default location.

    Codes are unique per shop; without a shop and with the code used by several shops this
    raises AmbiguousSku.
    """
    qs = SKU.objects.filter(code=code, is_active=True, product__is_active=True)
    if shop_id is not None:
        qs = qs.filter(shop_id=shop_id)
    elif shop_slug:
        qs = qs.filter(shop__slug=shop_slug)
    rows = list(
        qs.annotate(
            level_id=Subquery(_default_level().values("pk")[:1]),
            available=Subquery(_default_level().values("available")[:1]),
            product_title=F("product__title"),
        ).values(
            "id",
            "code",
            "title",
            "product_title",
            "price",
            "currency",
            "per_buyer_limit",
            "shop_id",
            "level_id",
            "available",
        )[:2]
    )
    if not rows:
        raise SkuNotFound()
    if len(rows) > 1:
        raise AmbiguousSku()
    row = rows[0]
    row["display_title"] = row["title"] or row["product_title"]
    return row


def sku_public(*, code: str, shop_slug: str | None = None) -> dict:
    row = sku_for_buy(code=code, shop_slug=shop_slug)
    return {
        "code": row["code"],
        "title": row["display_title"],
        "price": row["price"],
        "currency": row["currency"],
        "available": row["available"] or 0,
        "per_buyer_limit": row["per_buyer_limit"],
    }


def sku_of_shop(*, shop, code: str) -> SKU:
    sku = SKU.objects.select_related("shop", "product").filter(shop=shop, code=code).first()
    if sku is None:
        raise SkuNotFound()
    return sku


def product_detail(*, product) -> dict:
    skus = []
    for sku in product.skus.all().order_by("code"):
        levels = {lvl.location_id: lvl for lvl in sku.stock_levels.select_related("location")}
        default = next((lvl for lvl in levels.values() if lvl.location.is_default), None)
        skus.append(
            {
                "code": sku.code,
                "title": sku.display_title,
                "price": sku.price,
                "currency": sku.currency,
                "per_buyer_limit": sku.per_buyer_limit,
                "available": default.available if default else 0,
                "stock": [
                    {"location": lvl.location_id, "location_name": lvl.location.name, "available": lvl.available}
                    for lvl in levels.values()
                ],
            }
        )
    return {
        "id": product.pk,
        "title": product.title,
        "description": product.description,
        "shop": product.shop_id,
        "skus": skus,
        "created_at": product.created_at,
    }


def skus_with_default_stock(queryset):
    """``queryset`` of SKUs annotated with ``default_available``: the units at their shop's
    default location (what buys take and stream pins show), None where there is no row, and
    ``default_level``: that row's id."""
    return queryset.annotate(
        default_available=Subquery(_default_level().values("available")[:1]),
        default_level=Subquery(_default_level().values("pk")[:1]),
    )


def sku_default_available(*, sku: SKU) -> int:
    """The units of ``sku`` at its shop's default location (0 without a stock row there)."""
    level = StockLevel.objects.filter(sku=sku, location__is_default=True, location__shop_id=sku.shop_id).first()
    return level.available if level is not None else 0
