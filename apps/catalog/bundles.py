"""What a smart bundle costs, line by line (docs/pricing.md, "Bundles"). Pure: no database.

A bundle is one unit of its anchor and one of each complementary SKU. Its price is either

- a **bundle price**, split over the SKUs in proportion to their list prices, each share
  rounded half up to the cent, and whatever the rounding left over put on the anchor, so
  that the shares add up to the bundle price exactly; or
- a **percent off**: each SKU's list price less the percent, rounded half up to the cent.

The pricing layer's bundle provider (apps/pricing/bundles.py) turns these into price offers;
the storefront's bundle cards and ``bundle.*`` events show the same numbers.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENTS = Decimal("0.01")
ZERO = Decimal("0.00")


def bundle_unit_prices(*, list_prices: list[Decimal], price: Decimal | None, percent: Decimal | None) -> list[Decimal]:
    """Each SKU's price in the bundle, in the order of ``list_prices`` (the anchor's first)."""
    if (price is None) == (percent is None):
        raise ValueError("a bundle has a price or a percent off, not both")
    if percent is not None:
        return [max((p - p * percent / 100).quantize(CENTS, rounding=ROUND_HALF_UP), ZERO) for p in list_prices]
    total_list = sum(list_prices, ZERO)
    if total_list == 0:
        # Nothing to be proportional to: the whole price on the anchor.
        return [price] + [ZERO] * (len(list_prices) - 1)
    shares = [(price * p / total_list).quantize(CENTS, rounding=ROUND_HALF_UP) for p in list_prices]
    # The remainder (a few cents at most) goes on the anchor; on the dearest line instead if
    # the anchor's share would go below zero (an anchor listed at 0.00).
    at = 0 if shares[0] + price - sum(shares, ZERO) >= 0 else shares.index(max(shares))
    shares[at] += price - sum(shares, ZERO)
    return shares


def bundle_totals(*, list_prices: list[Decimal], price: Decimal | None, percent: Decimal | None) -> dict:
    """The bundle's ``price`` (what it costs), ``list_price`` (its SKUs' list prices) and
    ``saving`` (the difference; negative for a bundle priced above its parts)."""
    prices = bundle_unit_prices(list_prices=list_prices, price=price, percent=percent)
    total, list_total = sum(prices, ZERO), sum(list_prices, ZERO)
    return {"price": total, "list_price": list_total, "saving": list_total - total, "unit_prices": prices}
