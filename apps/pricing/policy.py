"""The stacking policy: the one place that decides which offers apply, in what order, and
what they take off (docs/pricing.md, "Stacking"). Pure: no database, no clock.

The rules (contract v1.1), in the order they are applied:

1. **Price offers** (``Kind.PRICE``: a flash deal's price, a bundle's) replace the list
   price of their SKU's units. One per line: a bundle wins over a deal (a bundle excludes
   deals), else the lowest price (ties: the lowest id). A price above the list price is
   charged as set (a positive adjustment): the buy has always charged a deal's price.
2. **At most one coupon per order**: of the coupon offers, the one that takes off the most.
   It does not apply to lines a bundle prices.
3. **Perks apply last**, on what the lines cost after 1 and 2, each in id order.
4. **No line below zero**: a discount is cut to what the line still costs.
5. **Shipping** (``price_shipping``): a delivered order pays the shop's fee once; a
   free-shipping perk (``Kind.FREE_SHIPPING``) takes all of it off, and is applied (and
   used) only when there is a fee to waive. Other offers never touch shipping.

``AMOUNT_OFF`` takes its value off once per order, from the matching lines in the order's
line order (what one line cannot absorb moves to the next); ``PERCENT_OFF`` takes its
percentage off each matching line, rounded half up to the cent.

"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from .offers import Adjustment, Kind, Line, Offer, PricedLine, PricedShipping

CENTS = Decimal("0.01")
ZERO = Decimal("0.00")


def _matches(offer: Offer, pl: PricedLine) -> bool:
    return offer.sku_id is None or offer.sku_id == pl.line.sku_id


def _discount(offer: Offer, targets: list[PricedLine]) -> list[tuple[PricedLine, Decimal]]:
    """What ``offer`` (amount or percent off) takes off each of ``targets``, each cut to
    what its line still costs; amounts as negative numbers."""
    out = []
    left = offer.value
    for pl in targets:
        cost = max(pl.total, ZERO)
        if offer.kind == Kind.PERCENT_OFF:
            off = (cost * offer.value / 100).quantize(CENTS, rounding=ROUND_HALF_UP)
        elif offer.kind == Kind.AMOUNT_OFF:
            off, left = min(left, cost), left - min(left, cost)
        else:
            continue
        off = min(off, cost)
        if off > 0:
            out.append((pl, -off))
    return out


def _apply(offer: Offer, changes: list[tuple[PricedLine, Decimal]]) -> None:
    for pl, amount in changes:
        pl.adjustments.append(Adjustment(offer.source, offer.id, offer.label, amount))
        if offer not in pl.applied:
            pl.applied.append(offer)


def price_lines(lines: list[Line], offers: list[Offer]) -> list[PricedLine]:
    """The lines priced under the stacking rules above."""
    priced = [PricedLine(line) for line in lines]
    bundled: set[int] = set()
    # 1. price offers
    for pl in priced:
        candidates = [o for o in offers if o.kind == Kind.PRICE and o.sku_id == pl.line.sku_id]
        if not candidates:
            continue
        bundles = [o for o in candidates if o.source == "bundle"]
        chosen = min(bundles or candidates, key=lambda o: (o.value, o.id))
        if chosen.source == "bundle":
            bundled.add(pl.line.sku_id)
        amount = (chosen.value - pl.line.unit_price) * pl.line.quantity
        _apply(chosen, [(pl, amount.quantize(CENTS))])
    # 2. one coupon: the one that takes off the most
    coupons = [o for o in offers if o.source == "coupon" and o.kind != Kind.PRICE]
    if coupons:
        eligible = [pl for pl in priced if pl.line.sku_id not in bundled]

        def saving(coupon: Offer) -> Decimal:
            return -sum((a for _, a in _discount(coupon, [p for p in eligible if _matches(coupon, p)])), ZERO)

        best = max(coupons, key=lambda o: (saving(o), -o.id))
        _apply(best, _discount(best, [p for p in eligible if _matches(best, p)]))
    # 3. perks, last
    for perk in sorted((o for o in offers if o.source == "perk" and o.kind != Kind.PRICE), key=lambda o: o.id):
        _apply(perk, _discount(perk, [p for p in priced if _matches(perk, p)]))
    return priced


def price_shipping(fee: Decimal, offers: list[Offer]) -> PricedShipping:
    """The order's shipping under rule 5: ``fee`` (0 for a pickup), waived by the first
    free-shipping offer (by id) when there is a fee."""
    shipping = PricedShipping(fee=fee)
    waivers = sorted((o for o in offers if o.kind == Kind.FREE_SHIPPING), key=lambda o: o.id)
    if fee > 0 and waivers:
        waiver = waivers[0]
        shipping.adjustments.append(Adjustment(waiver.source, waiver.id, waiver.label, -fee))
        shipping.applied.append(waiver)
    return shipping


def unit_price_now(*, unit_price: Decimal, sku_id: int, offers: list[Offer]) -> tuple[Decimal, Offer | None]:
    """What one unit of a SKU costs under the policy, and the price offer that set it: the
    price a pin shows (the same function a quote prices with)."""
    (pl,) = price_lines([Line(sku_id, "", 1, unit_price)], [o for o in offers if o.kind == Kind.PRICE])
    return pl.total, next((o for o in pl.applied if o.kind == Kind.PRICE), None)
