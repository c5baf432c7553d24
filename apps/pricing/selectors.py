"""Quotes: what a set of lines costs, and whether it can be had, right now. Writes nothing
(docs/pricing.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from apps.catalog.exceptions import AmbiguousSku, BuyerLimitExceeded, InsufficientStock, SkuNotFound
from apps.catalog.models import SKU, BuyerAllowance
from apps.catalog.selectors import bundles_suggested, skus_with_default_stock, skus_with_stock_at, venue_location

from .claims import STOCK, Claim, counter_claims, line_claims, line_limit, ordered, shelf_claims
from .exceptions import (
    CouponNotFound,
    DuplicateSku,
    MixedCurrencies,
    PickupNotAvailable,
    SeveralShops,
    TotalTooLarge,
    VenueNotOfShop,
)
from .offers import Context, Line, Offer, PricedLine, PricedShipping
from .policy import ZERO, price_lines, price_shipping
from .registry import providers, shop_resolver

# The most one order may total: Order.total is numeric(12, 2). The buy checks it too.
MAX_ORDER_TOTAL = Decimal("9999999999.99")


@dataclass
class Quote:
    lines: list[PricedLine]
    skus: list[dict]  # each line's SKU row (``resolve_lines``)
    currency: str
    suggestions: list[dict] = field(default_factory=list)
    shipping: PricedShipping = field(default_factory=PricedShipping)

    def line_claims(self, *, buyer_id: int | None) -> list[tuple[Claim, Claim | None]]:
        """Each line's units claim and allowance claim (None without a per-buyer limit, or
        without a buyer: an anonymous quote)."""
        return [
            line_claims(index=index, pl=pl, sku=row, buyer_id=buyer_id)
            for index, (pl, row) in enumerate(zip(self.lines, self.skus, strict=True))
        ]

    def claims(self, *, buyer_id: int | None, pairs: list[tuple[Claim, Claim | None]] | None = None) -> list[Claim]:
        """What a buy of these lines takes, in the order it takes it (apps.pricing.claims):
        the counters the applied offers redeem (a coupon, a perk; shipping's too), each
        line's units (and the stock row an early sale's units also come out of) and
        allowance; ``pairs``: ``line_claims``'s answer when the caller has it already."""
        pairs = pairs if pairs is not None else self.line_claims(buyer_id=buyer_id)
        return ordered(
            counter_claims(self.lines, shipping=self.shipping.applied)
            + [c for pair in pairs for c in pair if c is not None]
            + shelf_claims(self.lines)
        )

    @property
    def subtotal(self) -> Decimal:
        return sum((pl.subtotal for pl in self.lines), ZERO)

    @property
    def lines_total(self) -> Decimal:
        return sum((pl.total for pl in self.lines), ZERO)

    @property
    def total(self) -> Decimal:
        """What the order charges: its lines and its shipping."""
        return self.lines_total + self.shipping.total

    @property
    def discount(self) -> Decimal:
        """What offers took off the lines (shipping's adjustments are in ``shipping``)."""
        return self.subtotal - self.lines_total

    def body(self) -> dict:
        """``POST /api/v1/quotes/``'s answer (contract v1.1)."""
        return {
            "lines": [
                {
                    "sku": pl.line.code,
                    "title": row["title"],
                    "quantity": pl.line.quantity,
                    "unit_price": str(pl.line.unit_price),
                    "adjustments": [a.body() for a in pl.adjustments],
                    "total": str(pl.total),
                }
                for pl, row in zip(self.lines, self.skus, strict=True)
            ],
            "subtotal": str(self.subtotal),
            "discount": str(self.discount),
            "shipping": self.shipping.body(),
            "total": str(self.total),
            "currency": self.currency,
            "suggestions": self.suggestions,
        }


def _skus(*, codes: list[str], context: Context) -> list[dict]:
    """The active SKUs the codes name in the shop the context names (the stream's and/or
    the named shop), in ``resolve_lines``'s row shape, with their default-location stock
    (with a pickup ``venue``: their stock at that venue)."""
    qs = SKU.objects.filter(code__in=codes, is_active=True, product__is_active=True)
    if context.stream is not None:
        qs = qs.filter(shop_id=shop_resolver("stream")(context.stream))
    if context.shop:
        qs = qs.filter(shop__slug=context.shop)
    stocked = skus_with_stock_at(qs, location_id=context.venue) if context.venue else skus_with_default_stock(qs)
    rows = stocked.values(
        "id",
        "code",
        "title",
        "product__title",
        "price",
        "currency",
        "per_buyer_limit",
        "shop_id",
        "shop__shipping_fee",
        "default_level",
        "default_available",
    )
    return [
        {
            "id": row["id"],
            "code": row["code"],
            "title": row["title"] or row["product__title"],
            "price": row["price"],
            "currency": row["currency"],
            "per_buyer_limit": row["per_buyer_limit"],
            "shop_id": row["shop_id"],
            "shipping_fee": row["shop__shipping_fee"],
            "level_id": row["default_level"],
            "available": row["default_available"],
        }
        for row in rows
    ]


def refuse_duplicates(lines: list[tuple[str, int]]) -> None:
    """Duplicate codes are refused (DuplicateSku), not merged: the buyer meant one line."""
    codes = [code for code, _ in lines]
    duplicate = next((code for i, code in enumerate(codes) if code in codes[:i]), None)
    if duplicate is not None:
        raise DuplicateSku(sku=duplicate)


def resolve_lines(*, lines: list[tuple[str, int]], rows: list[dict]) -> list[dict]:
    """The SKU row of each line, in the lines' order, out of ``rows`` (every active SKU the
    codes name in the shop the request names: dicts with ``id, code, title, price,
    currency, per_buyer_limit, shop_id, shipping_fee`` (the shop's), ``level_id`` and, for
    quotes, ``available``). Raises
    SkuNotFound or AmbiguousSku (naming the SKU), SeveralShops, MixedCurrencies."""
    by_code: dict[str, list[dict]] = {}
    for row in rows:
        by_code.setdefault(row["code"], []).append(row)
    out = []
    for code, _ in lines:
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


def offers_for(*, buyer, lines: list[Line], context: Context) -> list[Offer]:
    """Every registered provider's candidate offers for these lines."""
    offers: list[Offer] = []
    for _source, provider in providers():
        offers.extend(provider(buyer=buyer, lines=lines, context=context))
    return offers


def quote_rows(*, buyer, lines: list[tuple[str, int]], rows: list[dict], context: Context) -> Quote:
    """Price ``lines`` whose SKU rows are ``rows`` (``resolve_lines``'s) under the stacking
    policy; refuse an unknown coupon and a line without a stock row (sold_out). The buy
    and ``price_quote`` both price through here, then refuse with ``quote_refusals``."""
    priced_lines = [
        Line(row["id"], row["code"], quantity, Decimal(row["price"]), row["shop_id"])
        for row, (_, quantity) in zip(rows, lines, strict=True)
    ]
    offers = offers_for(buyer=buyer, lines=priced_lines, context=context)
    if context.coupon and not any(o.source == "coupon" for o in offers):
        raise CouponNotFound()
    # A pickup ships nothing; a delivery pays the shop's fee once (docs/pricing.md, "Shipping").
    fee = ZERO if context.venue is not None else Decimal(rows[0].get("shipping_fee") or ZERO)
    quote = Quote(
        lines=price_lines(priced_lines, offers),
        skus=rows,
        currency=rows[0]["currency"],
        shipping=price_shipping(fee, offers),
    )
    if context.venue is not None:
        # A pickup takes the venue's shelf; units an offer set aside (a flash deal's, drawn
        # from another location) are not there (docs/buying.md, "Pickup at a venue").
        held = next((pl for pl in quote.lines if pl.unit_source is not None), None)
        if held is not None:
            raise PickupNotAvailable(sku=held.line.code)
    missing = next((row for row in rows if row["level_id"] is None), None)
    if missing is not None:
        raise InsufficientStock(sku=missing["code"])
    return quote


def quote_refusals(quote: Quote) -> None:
    """Refuse what no buy could get whatever the stock: a total too large, then a line's
    quantity over its per-buyer limit by itself."""
    if quote.total > MAX_ORDER_TOTAL:
        raise TotalTooLarge()
    for pl, row in zip(quote.lines, quote.skus, strict=True):
        limit, _ = line_limit(pl, row)
        if limit is not None and pl.line.quantity > limit:
            raise BuyerLimitExceeded(limit=limit, sku=pl.line.code)


def _check_available(*, buyer, quote: Quote) -> None:
    """Refuse as the buy's claims would, in the order the buy takes them: units (the
    deal's, or the default location's), then per-buyer limits with what the buyer
    already holds (one query)."""
    buyer_id = buyer.pk if buyer is not None and getattr(buyer, "is_authenticated", False) else None
    claims = quote.claims(buyer_id=buyer_id)
    keys = [c.target for c in claims if c.kind == "allowance"]
    held = (
        dict(BuyerAllowance.objects.filter(buyer_id=buyer_id, key__in=keys).values_list("key", "units")) if keys else {}
    )
    for claim in claims:
        if claim.kind == "units":
            pl, row = quote.lines[claim.line], quote.skus[claim.line]
            source = pl.unit_source
            if source is None:
                available = row["available"]
            elif claim.source == STOCK:  # the shelf an early sale's units also come off
                available = source.stock_left
            else:
                available = source.units_left
            if available < claim.quantity:
                raise InsufficientStock(sku=claim.sku)
        elif claim.kind == "allowance" and held.get(claim.target, 0) + claim.quantity > claim.limit:
            raise BuyerLimitExceeded(limit=claim.limit, sku=claim.sku)


def price_quote(*, buyer, lines: list[tuple[str, int]], context: Context) -> Quote:
    """What ``lines`` ([(sku code, quantity)], one shop) cost for ``buyer`` (None when
    anonymous) in ``context``, under the stacking policy; raises what the buy would answer
    right now (unknown or ambiguous SKU, sold out, over a per-buyer limit) instead, in the
    buy's order, so a request wrong in two ways gets the same answer from both. A
    coupon's refusals (used, expired, not the buyer's, cap reached) come from its
    provider, before any other: the buy takes its counters first.
    """
    refuse_duplicates(lines)
    venue_shop_id = venue_location(venue_id=context.venue).shop_id if context.venue else None
    rows = resolve_lines(lines=lines, rows=_skus(codes=[code for code, _ in lines], context=context))
    refuse_venue(rows=rows, venue_shop_id=venue_shop_id, context=context)
    quote = quote_rows(buyer=buyer, lines=lines, rows=rows, context=context)
    quote_refusals(quote)
    _check_available(buyer=buyer, quote=quote)
    if context.bundle is None:
        # Bundles that would apply to these lines (docs/pricing.md, "Bundles").
        quote.suggestions = bundles_suggested(sku_ids=[row["id"] for row in rows])
    return quote


def refuse_venue(*, rows: list[dict], venue_shop_id: int | None, context: Context) -> None:
    """A pickup venue must be one of the lines' shop's (VenueNotOfShop)."""
    if context.venue and venue_shop_id != rows[0]["shop_id"]:
        raise VenueNotOfShop()
