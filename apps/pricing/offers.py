"""What providers and the stacking policy exchange (docs/pricing.md).

Modelled on django-oscar's conditional offers (a condition says which lines an offer is
for, a benefit what it does to them) and Saleor's line discounts (each applied discount is
kept on its line with its source, reason and amount), cut down to what the checkout needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class Context:
    """Where and when a buy or quote happens: the stream (flash deals), the named shop, the
    coupon code (the geofences app's coupon provider), ``venue`` (the pickup venue of a
    pickup, its location id: the lines take that location's stock), ``bundle`` (the bundle
    the request names: apps/pricing/bundles.py), and ``now``: the moment the offers are
    valued at (a running-time coupon's value), the same moment the buy's claims are taken
    at (None: the provider's own clock)."""

    stream: int | None = None
    shop: str | None = None
    coupon: str | None = None
    venue: int | None = None
    now: datetime | None = None
    bundle: int | None = None
    # What the buy's one read found about the buyer for providers that registered a flag
    # (registry.buyer_flag): ((name, value), ...); None when unknown (a quote).
    buyer_flags: tuple[tuple[str, bool], ...] | None = None


@dataclass(frozen=True)
class Line:
    """A line as providers see it: one SKU (resolved, of one shop) and how many."""

    sku_id: int
    code: str
    quantity: int
    unit_price: Decimal  # the SKU's list price
    shop_id: int | None = None  # the SKU's shop (all lines have one)


class Kind:
    PRICE = "price"  # ``value`` replaces the list price of a unit (deal, bundle)
    AMOUNT_OFF = "amount_off"  # ``value`` off the order's matching lines, once (coupon, perk)
    PERCENT_OFF = "percent_off"  # ``value`` percent off each matching line (coupon, perk)
    FREE_SHIPPING = "free_shipping"  # waives the order's shipping fee (perk); ``value`` unused


@dataclass(frozen=True)
class Offer:
    """A candidate offer: what a provider found that could apply.

    ``sku_id`` None means every line of the order (a shop-wide coupon or perk). An offer
    with ``units_left`` has units of its own (a flash deal's): a line it prices takes its
    units from the offer, not from the SKU's stock row. ``per_buyer_limit`` counts the
    buyer's units under ``allowance_key`` (held so far: ``held``); without one, the SKU's
    own limit applies. ``redeem`` names the counters an order that applies the offer
    consumes once (``(("coupon", 12), ("geo_offer", 3))``: a single-use coupon, an offer's
    redemption cap), taken as claims of kind ``counter`` (apps.pricing.claims).

    ``units_source`` names the units source its units are taken from when that is not
    ``source`` (a flash deal sold early to a perk holder: ``deal_early``, which counts them
    against the deal before it opens); ``stock_row``, when set, is a stock row the units
    come out of as well (that early sale's units are on the deal's location's shelf).
    """

    source: str  # "deal" | "coupon" | "perk" | "bundle"
    id: int
    label: str
    kind: str
    value: Decimal
    sku_id: int | None = None
    units_left: int | None = None
    per_buyer_limit: int | None = None
    allowance_key: str = ""
    redeem: tuple[tuple[str, int], ...] = ()
    units_source: str = ""
    stock_row: int | None = None
    stock_left: int | None = None  # what ``stock_row`` holds (a quote's check)
    ends_at: datetime | None = None  # when it stops applying (a flash deal's closing time)


# The longest early access there may be (an ``early_access`` perk's minutes), in minutes.
EARLY_ACCESS_MAX_MINUTES = 1440


@dataclass(frozen=True)
class Access:
    """Early access a buyer holds in a shop (an ``early_access`` perk): offers that open at a
    set time may be sold to them from ``minutes`` before it, once, consuming the counters
    ``redeem`` names; ``label`` says so on the receipt."""

    minutes: int
    label: str
    redeem: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Adjustment:
    source: str
    id: int
    label: str
    amount: Decimal  # negative for a discount

    def body(self) -> dict:
        return {"source": self.source, "id": self.id, "label": self.label, "amount": str(self.amount)}


@dataclass
class PricedLine:
    line: Line
    adjustments: list[Adjustment] = field(default_factory=list)
    applied: list[Offer] = field(default_factory=list)

    @property
    def subtotal(self) -> Decimal:
        return self.line.unit_price * self.line.quantity

    @property
    def total(self) -> Decimal:
        return self.subtotal + sum((a.amount for a in self.adjustments), Decimal("0.00"))

    @property
    def unit_source(self) -> Offer | None:
        """The applied offer the line's units come from (a deal), or None (the stock row)."""
        return next((o for o in self.applied if o.units_left is not None), None)


@dataclass
class PricedShipping:
    """An order's shipping: the shop's fee (0 for a pickup or a shop that charges none) and
    what offers took off it."""

    fee: Decimal = Decimal("0.00")
    adjustments: list[Adjustment] = field(default_factory=list)
    applied: list[Offer] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return self.fee + sum((a.amount for a in self.adjustments), Decimal("0.00"))

    def body(self) -> dict:
        return {
            "fee": str(self.fee),
            "adjustments": [a.body() for a in self.adjustments],
            "total": str(self.total),
        }
