"""Quotes: what a set of lines costs, and whether it can be had, right now. Writes nothing
(docs/pricing.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from apps.catalog.exceptions import AmbiguousSku, BuyerLimitExceeded, InsufficientStock, SkuNotFound
from apps.catalog.models import SKU, BuyerAllowance
from apps.catalog.selectors import skus_with_default_stock

from .exceptions import CouponNotFound, DuplicateSku, MixedCurrencies, QuoteTotalTooLarge, SeveralShops
from .offers import Context, Line, Offer, PricedLine
from .policy import ZERO, price_lines
from .registry import providers, shop_resolver

# The most one order may total: Order.total is numeric(12, 2). The buy checks it too.
MAX_ORDER_TOTAL = Decimal("9999999999.99")


@dataclass
class Quote:
    lines: list[PricedLine]
    titles: dict[int, str]
    currency: str
    suggestions: list[dict] = field(default_factory=list)

    @property
    def subtotal(self) -> Decimal:
        return sum((pl.subtotal for pl in self.lines), ZERO)

    @property
    def total(self) -> Decimal:
        return sum((pl.total for pl in self.lines), ZERO)

    @property
    def discount(self) -> Decimal:
        return self.subtotal - self.total

    def body(self) -> dict:
        """``POST /api/v1/quotes/``'s answer (contract v1.1)."""
        return {
            "lines": [
                {
                    "sku": pl.line.code,
                    "title": self.titles[pl.line.sku_id],
                    "quantity": pl.line.quantity,
                    "unit_price": str(pl.line.unit_price),
                    "adjustments": [a.body() for a in pl.adjustments],
                    "total": str(pl.total),
                }
                for pl in self.lines
            ],
            "subtotal": str(self.subtotal),
            "discount": str(self.discount),
            "total": str(self.total),
            "currency": self.currency,
            "suggestions": self.suggestions,
        }


def _skus(*, codes: list[str], context: Context) -> list[dict]:
    """The active SKUs the codes name, in the codes' order, in the shop the context names
    (the stream's and/or the named shop), with their default-location stock."""
    qs = SKU.objects.filter(code__in=codes, is_active=True, product__is_active=True)
    if context.stream is not None:
        qs = qs.filter(shop_id=shop_resolver("stream")(context.stream))
    if context.shop:
        qs = qs.filter(shop__slug=context.shop)
    rows = list(
        skus_with_default_stock(qs).values(
            "id",
            "code",
            "title",
            "product__title",
            "price",
            "currency",
            "per_buyer_limit",
            "shop_id",
            "default_available",
        )
    )
    by_code: dict[str, list[dict]] = {}
    for row in rows:
        by_code.setdefault(row["code"], []).append(row)
    out = []
    for code in codes:
        found = by_code.get(code, [])
        if not found:
            raise SkuNotFound(sku=code)
        if len(found) > 1:
            raise AmbiguousSku(sku=code)
        out.append(found[0])
    if len({row["shop_id"] for row in out}) > 1:
        raise SeveralShops()
    if len({row["currency"] for row in out}) > 1:
        raise MixedCurrencies()
    return out


def _held(*, buyer, priced: list[PricedLine], skus: dict[int, dict]) -> dict[tuple[int, str], int]:
    """Units the buyer holds against each limit that applies (one query)."""
    if buyer is None or not getattr(buyer, "is_authenticated", False):
        return {}
    keys = {_limit(pl, skus[pl.line.sku_id])[1:] for pl in priced if _limit(pl, skus[pl.line.sku_id])[0]}
    if not keys:
        return {}
    rows = BuyerAllowance.objects.filter(
        buyer_id=buyer.pk, sku_id__in={k[0] for k in keys}, scope__in={k[1] for k in keys}
    ).values_list("sku_id", "scope", "units")
    return {(sku_id, scope): units for sku_id, scope, units in rows}


def _limit(pl: PricedLine, sku: dict) -> tuple[int | None, int, str]:
    """The per-buyer limit that applies to a line and what it counts under: the limit of
    the offer the units come from (a deal's) if it has one, else the SKU's."""
    source = pl.unit_source
    if source is not None and source.per_buyer_limit is not None:
        return source.per_buyer_limit, pl.line.sku_id, source.allowance_key
    return sku["per_buyer_limit"], pl.line.sku_id, ""


def _check_available(*, buyer, priced: list[PricedLine], skus: dict[int, dict]) -> None:
    """Refuse as the buy would, in its order for each line: a quantity over the per-buyer
    limit by itself, not enough units (the deal's, or the default location's: the buy's
    take), then over the limit with what the buyer already holds (the buy's allowance,
    taken after the units)."""
    held = _held(buyer=buyer, priced=priced, skus=skus)
    for pl in priced:
        sku, quantity = skus[pl.line.sku_id], pl.line.quantity
        limit, sku_id, key = _limit(pl, sku)
        if limit is not None and quantity > limit:
            raise BuyerLimitExceeded(limit=limit, sku=pl.line.code)
        source = pl.unit_source
        available = source.units_left if source is not None else sku["default_available"]
        if sku["default_available"] is None or available < quantity:
            raise InsufficientStock(sku=pl.line.code)
        if limit is not None and held.get((sku_id, key), 0) + quantity > limit:
            raise BuyerLimitExceeded(limit=limit, sku=pl.line.code)


def offers_for(*, buyer, lines: list[Line], context: Context) -> list[Offer]:
    """Every registered provider's candidate offers for these lines."""
    offers: list[Offer] = []
    for _source, provider in providers():
        offers.extend(provider(buyer=buyer, lines=lines, context=context))
    return offers


def price_quote(*, buyer, lines: list[tuple[str, int]], context: Context) -> Quote:
    """What ``lines`` ([(sku code, quantity)], one shop) cost for ``buyer`` (None when
    anonymous) in ``context``, under the stacking policy; raises what the buy would answer
    right now (unknown or ambiguous SKU, sold out, over a per-buyer limit) instead.

    Duplicate codes are refused (DuplicateSku), not merged: the buyer meant one line.
    """
    codes = [code for code, _ in lines]
    duplicate = next((code for i, code in enumerate(codes) if code in codes[:i]), None)
    if duplicate is not None:
        raise DuplicateSku(sku=duplicate)
    rows = _skus(codes=codes, context=context)
    priced_lines = [
        Line(row["id"], row["code"], quantity, Decimal(row["price"]))
        for row, (_, quantity) in zip(rows, lines, strict=True)
    ]
    offers = offers_for(buyer=buyer, lines=priced_lines, context=context)
    if context.coupon and not any(o.source == "coupon" for o in offers):
        raise CouponNotFound()
    priced = price_lines(priced_lines, offers)
    skus = {row["id"]: row for row in rows}
    # In the buy's order, so a request wrong in two ways gets the same answer from both: no
    # stock row, then a total too large, then the per-buyer limit and the units.
    missing = next((pl for pl in priced if skus[pl.line.sku_id]["default_available"] is None), None)
    if missing is not None:
        raise InsufficientStock(sku=missing.line.code)
    quote = Quote(
        lines=priced,
        titles={row["id"]: row["title"] or row["product__title"] for row in rows},
        currency=rows[0]["currency"],
    )
    if quote.total > MAX_ORDER_TOTAL:
        raise QuoteTotalTooLarge()
    _check_available(buyer=buyer, priced=priced, skus=skus)
    return quote
