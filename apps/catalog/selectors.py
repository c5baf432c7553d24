"""Reads of the catalog."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F, OuterRef, Q, Subquery

from .bundles import bundle_totals
from .exceptions import AmbiguousSku, SkuNotFound, VenueNotFound
from .models import SKU, BundleRule, Location, StockLevel


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


def skus_with_stock_at(queryset, *, location_id: int):
    """``skus_with_default_stock``'s annotations for the stock row at ``location_id`` (a
    pickup venue's) instead of the default location's."""
    level = StockLevel.objects.filter(sku=OuterRef("pk"), location_id=location_id)
    return queryset.annotate(
        default_available=Subquery(level.values("available")[:1]),
        default_level=Subquery(level.values("pk")[:1]),
    )


# -- venues: on-site stock (docs/geofences.md) ---------------------------------------


def venue_location(*, venue_id: int) -> Location:
    """The location of kind venue ``venue_id`` (a venue's id is its location's); raises
    VenueNotFound for an unknown id or a location of another kind."""
    if not 0 < venue_id < 2**31:  # beyond the id column's range: no such row
        raise VenueNotFound()
    location = Location.objects.filter(pk=venue_id, kind=Location.Kind.VENUE).first()
    if location is None:
        raise VenueNotFound()
    return location


def venue_stock(*, venue_id: int) -> dict[str, int]:
    """``GET /api/v1/venues/{id}/stock/``: the venue's own stock rows of active SKUs, by code."""
    venue_location(venue_id=venue_id)
    rows = StockLevel.objects.filter(
        location_id=venue_id, sku__is_active=True, sku__product__is_active=True
    ).values_list("sku__code", "available")
    return dict(sorted(rows))


def venue_levels(*, sku_ids, shop_id: int) -> list[dict]:
    """The stock rows of ``sku_ids`` at the shop's venues: ``{"venue", "venue_name", "sku",
    "level", "available", "version"}`` (a stream page's "At the venue: N left")."""
    rows = StockLevel.objects.filter(
        sku_id__in=list(sku_ids), location__shop_id=shop_id, location__kind=Location.Kind.VENUE
    ).values("location_id", "location__name", "sku__code", "pk", "available", "version")
    return [
        {
            "venue": r["location_id"],
            "venue_name": r["location__name"],
            "sku": r["sku__code"],
            "level": r["pk"],
            "available": r["available"],
            "version": r["version"],
        }
        for r in rows
    ]


# -- smart bundles ----------------------------------------------------------------------------


def _rules():
    return BundleRule.objects.select_related("anchor__product", "venue").prefetch_related("items__sku__product")


def bundle_rule_get(*, bundle_id: int, active_only: bool = True) -> BundleRule | None:
    qs = _rules().filter(pk=bundle_id)
    if active_only:
        qs = qs.filter(is_active=True)
    return qs.first()


def bundle_skus(rule: BundleRule) -> list[SKU]:
    """The bundle's SKUs: the anchor first, then the complementary SKUs in the order added."""
    return [rule.anchor] + [item.sku for item in rule.items.all()]


def bundle_prices(rule: BundleRule, list_prices: list[Decimal] | None = None) -> dict:
    """``bundle_totals`` of the rule over its SKUs' list prices (or ``list_prices``, in
    ``bundle_skus`` order)."""
    prices = list_prices if list_prices is not None else [sku.price for sku in bundle_skus(rule)]
    return bundle_totals(list_prices=[Decimal(p) for p in prices], price=rule.price, percent=rule.percent)


def bundle_anchor_onsite(rule: BundleRule) -> int | None:
    """The anchor's units at the rule's venue (0 without a stock row there); None for an
    ``always`` rule."""
    if rule.trigger != BundleRule.Trigger.LOW_STOCK:
        return None
    level = StockLevel.objects.filter(sku_id=rule.anchor_id, location_id=rule.venue_id).values("available").first()
    return level["available"] if level else 0


def bundle_trigger_holds(rule: BundleRule, onsite: int | None = None) -> bool:
    """Whether the bundle is offered now: always, or while the anchor's stock at the venue is
    at or below the threshold (no stock row there counts as 0)."""
    if rule.trigger == BundleRule.Trigger.ALWAYS:
        return True
    onsite = bundle_anchor_onsite(rule) if onsite is None else onsite
    return onsite <= rule.threshold


def bundle_body(rule: BundleRule) -> dict:
    """A bundle as quotes suggest it and the storefront shows it (docs/pricing.md, "Bundles"):
    money as decimal strings."""
    skus = bundle_skus(rule)
    totals = bundle_prices(rule)
    return {
        "bundle": rule.pk,
        "label": rule.label,
        "skus": [sku.code for sku in skus],
        "price": str(totals["price"]),
        "list_price": str(totals["list_price"]),
        "saving": str(totals["saving"]),
    }


def bundle_card(rule: BundleRule) -> dict:
    """``bundle_body`` with what a storefront needs to decide when to show it: the anchor,
    titles, currency, trigger, threshold and venue."""
    skus = bundle_skus(rule)
    return {
        **bundle_body(rule),
        "anchor": rule.anchor.code,
        "titles": [sku.display_title for sku in skus],
        "currency": rule.anchor.currency,
        "trigger": rule.trigger,
        "threshold": rule.threshold,
        "venue": rule.venue_id,
        "is_active": rule.is_active,
    }


def bundles_of_anchors(*, sku_ids) -> list[BundleRule]:
    """The active bundle rules anchored on any of ``sku_ids``, by id."""
    return list(_rules().filter(anchor_id__in=list(sku_ids), is_active=True).order_by("pk"))


def bundles_suggested(*, sku_ids) -> list[dict]:
    """Quotes' ``suggestions``: every active bundle anchored on one of ``sku_ids`` whose
    trigger holds now (two queries, three with a low_stock rule)."""
    rules = bundles_of_anchors(sku_ids=sku_ids)
    watched = [(r.anchor_id, r.venue_id) for r in rules if r.trigger == BundleRule.Trigger.LOW_STOCK]
    onsite = {}
    if watched:
        levels = StockLevel.objects.filter(
            sku_id__in={a for a, _ in watched}, location_id__in={v for _, v in watched}
        ).values_list("sku_id", "location_id", "available")
        onsite = {(sku, loc): n for sku, loc, n in levels}
    return [
        bundle_body(rule)
        for rule in rules
        if bundle_trigger_holds(rule, onsite.get((rule.anchor_id, rule.venue_id), 0))
    ]


def bundles_with_sku(*, sku_id: int) -> list[BundleRule]:
    """Every bundle rule (active or not) the SKU is part of, as the anchor or an item."""
    return list(_rules().filter(Q(anchor_id=sku_id) | Q(items__sku_id=sku_id)).distinct().order_by("pk"))
