"""A flash deal's own units as a units source of the buy's claims (apps.pricing.claims;
docs/pricing.md, "Claims"). Registered from ``StreamsConfig.ready``."""

from __future__ import annotations

from apps.catalog.services import StockCount, stock_changed_event
from apps.pricing.registry import units_source

from .services import (
    DealCount,
    deal_changed_event,
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

    def lock_for_return(self, *, id: int) -> int | None:
        """While the deal is open its units go back to it; once closed, to the location it
        drew them from (it gave the rest back when it closed)."""
        return deal_return_target(deal_id=id)

    def give_back(self, *, id: int, quantity: int, line) -> tuple[str, dict, list]:
        count = deal_return(deal_id=id, quantity=quantity)
        if isinstance(count, StockCount):  # closed meanwhile (not under lock_for_return's lock)
            return stock_changed_event(sku_id=line.sku_id, sku_code=line.sku_code, shop_id=line.shop_id, level=count)
        return deal_changed_event(deal_id=id, count=count)
