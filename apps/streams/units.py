"""A flash deal's own units as a units source of the buy's claims (apps.pricing.claims;
docs/pricing.md, "Claims"). Registered from ``StreamsConfig.ready``."""

from __future__ import annotations

from apps.catalog.services import StockCount, stock_changed_event
from apps.pricing.offers import EARLY_ACCESS_MAX_MINUTES
from apps.pricing.registry import units_source

from .pricing import DEAL_EARLY
from .services import (
    DealCount,
    deal_changed_event,
    deal_early_refused,
    deal_early_return,
    deal_early_take_statement,
    deal_return,
    deal_return_target,
    deal_take_refused,
    deal_take_statement,
)


@units_source("deal")
class DealUnits:
    """A deal's own units, for the buy's claims (apps.pricing.claims)."""

    def take_statement(self, *, id: int, quantity: int, now, after: str | None) -> tuple[str, list]:
        return deal_take_statement(deal_id=id, quantity=quantity, now=now, after=after)

    def refused(self, *, id: int, now, sku: str):
        deal_take_refused(deal_id=id, now=now, sku=sku)

    def taken_event(self, *, id: int, available: int, version: int, line) -> tuple[str, dict, list]:
        return deal_changed_event(deal_id=id, count=DealCount(id, available, version))

    def lock_for_return(self, *, id: int, quantity: int, stock_level_id: int) -> int | None:
        """While the deal is open its units go back to it; once closed, to the location it
        drew them from (it gave the rest back when it closed)."""
        return deal_return_target(deal_id=id)

    def give_back(self, *, id: int, quantity: int, line) -> tuple[str, dict, list]:
        count = deal_return(deal_id=id, quantity=quantity)
        if isinstance(count, StockCount):  # closed meanwhile (not under lock_for_return's lock)
            return stock_changed_event(sku_id=line.sku_id, sku_code=line.sku_code, shop_id=line.shop_id, level=count)
        return deal_changed_event(deal_id=id, count=count)


@units_source(DEAL_EARLY)
class DealEarlyUnits:
    """A deal's units sold early to a holder of early access (docs/pricing.md, "Early
    access"): counted on the deal (``early_sold``, never past its quantity) while the units
    come off the shelf at the deal's location (the line's stock claim,
    ``Offer.stock_row``). ``id`` is the deal's; the early window is the offer's, which the
    claim does not carry, so the statement admits a buy up to the longest early access
    there is (``EARLY_ACCESS_MAX_MINUTES``): the provider only offers the deal to a buyer
    inside their own window."""

    def take_statement(self, *, id: int, quantity: int, now, after: str | None) -> tuple[str, list]:
        return deal_early_take_statement(
            deal_id=id, quantity=quantity, minutes=EARLY_ACCESS_MAX_MINUTES, now=now, after=after
        )

    def refused(self, *, id: int, now, sku: str):
        deal_early_refused(deal_id=id, now=now, sku=sku)

    def taken_event(self, *, id: int, available: int, version: int, line) -> None:
        return None  # nobody watches a deal's early count (viewers see deals once open)

    def lock_for_return(self, *, id: int, quantity: int, stock_level_id: int) -> int:
        return deal_early_return(deal_id=id, quantity=quantity, shelf_id=stock_level_id)

    def give_back(self, *, id: int, quantity: int, line):  # pragma: no cover - never called
        raise AssertionError("an early sale's units go back to the shelf (lock_for_return)")
