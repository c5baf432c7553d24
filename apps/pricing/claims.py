"""Claims: what a buy takes, all or nothing (docs/pricing.md, "Claims").

A buy makes three kinds of claim:

- **units**, per line: out of the SKU's stock row (source ``stock``, the row's id), or out
  of the offer whose units the line is sold from (a flash deal: source ``deal``, the
  deal's id);
- **allowance**, per line under a limit: units counted against a per-buyer limit, under
  its key (``sku:<id>`` for a SKU's own limit, ``deal:<id>`` for a deal's);
- **counter**, per order: one redemption of something an applied offer names in its
  ``redeem`` (a coupon's single use: source ``coupon``; a geo offer's redemption cap:
  source ``geo_offer``), whatever the number of lines it applies to.

Every claim is one conditional statement that takes only what is there (``available >=
n``, ``units + n <= limit``, ``redeemed_at IS NULL``), so no interleaving of requests can
oversell or redeem twice. A buy takes its claims in one global order (``Claim.rank``:
counters, then units, then allowances, each by source and id), so two buys that want the
same rows lock them in the same order and cannot deadlock; releases give back in that
order too. On PostgreSQL the claims are chained parts of the reserve's one statement
(each part takes only if the one before it did); a counter is a pair of parts: its row is
locked first (``SELECT ... FOR UPDATE``, returning nothing when it cannot be taken) and
taken after the units and allowances, where, locked and checked, it cannot refuse. So
a buy whose only refusable writes are one line's units (one line, no limit) is still a
statement of its own with a coupon (``claims_atomic``: no BEGIN and COMMIT). Elsewhere
the claims are taken one by one inside the reserve's transaction.

Apps whose offers have units of their own register a units source (``@units_source``) in
their ``AppConfig.ready``, as they register offer providers; ``stock`` is this module's.
Apps whose offers are single-use or capped register a counter source
(``@counter_source``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from django.db import connection

from apps.catalog.exceptions import BuyerLimitExceeded, InsufficientStock
from apps.catalog.services import (
    StockCount,
    allowance_return,
    allowance_take_statement,
    stock_changed_event,
    stock_return,
    stock_take_statement,
)
from creatorcommerce.errors import DomainError
from creatorcommerce.sql import after_gate, names

from .offers import Offer, PricedLine
from .registry import counter_source_for, units_source, units_source_for

STOCK = "stock"


@dataclass(frozen=True)
class LineRef:
    """What the events of a line's units need to know about it."""

    sku_id: int
    sku_code: str
    shop_id: int


@dataclass(frozen=True)
class Claim:
    kind: str  # "counter", "units" or "allowance"
    source: str  # units: "stock" or the offer's source; allowance: "allowance"; counter: its source
    target: int | str  # units: the stock row's or the offer's id; allowance: the limit's key; counter: its id
    quantity: int
    line: int  # index of the line it is for
    sku: str  # that line's code, named when the claim is refused
    limit: int | None = None  # allowance only

    @property
    def rank(self) -> tuple:
        return (_KIND_RANK[self.kind], self.source, str(type(self.target).__name__), self.target)

    @property
    def columns(self) -> tuple[str, ...]:
        if self.kind == "counter":
            return (counter_source_for(self.source).column,)
        return ("available", "version") if self.kind == "units" else ("units",)

    def lock_statement(self, *, buyer_id: int, now, after: str | None) -> tuple[str, list]:
        """A counter's ``SELECT ... FOR UPDATE`` (the first of its two parts on PostgreSQL)."""
        return counter_source_for(self.source).lock_statement(id=self.target, buyer_id=buyer_id, now=now, after=after)

    def statement(self, *, buyer_id: int, now, after: str | None) -> tuple[str, list]:
        if self.kind == "counter":
            return counter_source_for(self.source).take_statement(
                id=self.target, buyer_id=buyer_id, now=now, after=after
            )
        if self.kind == "units":
            return units_source_for(self.source).take_statement(
                id=self.target, quantity=self.quantity, now=now, after=after
            )
        return allowance_take_statement(
            buyer_id=buyer_id, key=self.target, quantity=self.quantity, limit=self.limit, after=after
        )

    def refused(self, *, now) -> NoReturn:
        """Raise why this claim took nothing (it was run and returned no row); the error
        carries the claim as ``claim`` (the orders app remembers a counter found at zero)."""
        try:
            if self.kind == "counter":
                counter_source_for(self.source).refused(id=self.target, now=now)
            if self.kind == "units":
                units_source_for(self.source).refused(id=self.target, now=now, sku=self.sku)
            raise BuyerLimitExceeded(limit=self.limit, sku=self.sku)
        except DomainError as error:
            error.claim = self
            raise


_KIND_RANK = {"counter": 0, "units": 1, "allowance": 2}


def counter_claims(priced: list[PricedLine], *, shipping: list[Offer] = ()) -> list[Claim]:
    """One counter claim per counter the applied offers name (``Offer.redeem``), however
    many lines an offer applies to; each names the first line it applies to (the offers
    ``shipping`` applied name the first line)."""
    found: dict[tuple[str, int], Claim] = {}
    applied = [(index, pl, offer) for index, pl in enumerate(priced) for offer in pl.applied]
    applied += [(0, priced[0], offer) for offer in shipping] if priced else []
    for index, pl, offer in applied:
        for source, target in offer.redeem:
            found.setdefault((source, target), Claim("counter", source, target, 1, index, pl.line.code))
    return list(found.values())


def shelf_claims(priced: list[PricedLine]) -> list[Claim]:
    """The stock-row claims of lines whose units an offer takes from its own count and a
    shelf both (``Offer.stock_row``: a flash deal sold early to a perk holder)."""
    return [
        Claim("units", STOCK, pl.unit_source.stock_row, pl.line.quantity, index, pl.line.code)
        for index, pl in enumerate(priced)
        if pl.unit_source is not None and pl.unit_source.stock_row is not None
    ]


def redemption_keys(claims: list[Claim]) -> list[str]:
    """What an order records it redeemed (``Order.redemptions``): ``<source>:<id>`` per
    counter claim, in the claims' order; ``counters_give_back`` takes them back."""
    return [f"{c.source}:{c.target}" for c in claims if c.kind == "counter"]


def claims_atomic(claims: list[Claim]) -> bool:
    """Whether taking ``claims`` in one statement needs a transaction around it: when a
    claim may refuse after another one wrote. Counters never do in the chained statement
    (locked first, taken last), so only units and allowances count."""
    return sum(1 for c in claims if c.kind != "counter") > 1


def unit_source_key(claim: Claim) -> str:
    """How an order line records where its units came from: "" for its stock row,
    ``<source>:<id>`` for an offer's own units."""
    return "" if claim.source == STOCK else f"{claim.source}:{claim.target}"


def line_claims(*, index: int, pl: PricedLine, sku: dict, buyer_id: int | None) -> tuple[Claim, Claim | None]:
    """The units claim of a priced line, and its allowance claim when a per-buyer limit
    applies (the limit of the offer the units come from if it has one, else the SKU's)."""
    source, quantity, code = pl.unit_source, pl.line.quantity, pl.line.code
    if source is not None:
        units = Claim("units", source.units_source or source.source, source.id, quantity, index, code)
    else:
        units = Claim("units", STOCK, sku["level_id"], quantity, index, code)
    limit, key = line_limit(pl, sku)
    if limit is None or buyer_id is None:
        return units, None
    return units, Claim("allowance", "allowance", key, quantity, index, code, limit)


def line_limit(pl: PricedLine, sku: dict) -> tuple[int | None, str]:
    """The per-buyer limit that applies to a line and the key it counts under."""
    source = pl.unit_source
    if source is not None and source.per_buyer_limit is not None:
        return source.per_buyer_limit, source.allowance_key
    return sku["per_buyer_limit"], f"sku:{pl.line.sku_id}"


def ordered(claims: list[Claim]) -> list[Claim]:
    """Claims in the one order every buy takes them in; allowance claims on one key (two
    lines under one limit) merged into one."""
    merged: dict[tuple, Claim] = {}
    for claim in claims:
        key = (claim.kind, claim.source, claim.target)
        if key in merged:
            if claim.kind == "units":
                raise ValueError(f"two lines take units from {key}")
            first = merged[key]
            merged[key] = Claim(
                first.kind,
                first.source,
                first.target,
                first.quantity + claim.quantity,
                first.line,
                first.sku,
                first.limit,
            )
        else:
            merged[key] = claim
    return sorted(merged.values(), key=lambda c: c.rank)


def claims_take(*, claims: list[Claim], buyer_id: int, now) -> list[tuple]:
    """Take ``claims`` one statement each, in order; return each one's row. Raises why
    the first refused claim refused. Precondition: inside ``transaction.atomic()`` (a
    refusal after a take rolls it back)."""
    results = []
    with connection.cursor() as cursor:
        for claim in claims:
            cursor.execute(*claim.statement(buyer_id=buyer_id, now=now, after=None))
            row = cursor.fetchone()
            if row is None:
                claim.refused(now=now)
            results.append(tuple(row))
    return results


def claims_chain(*, claims: list[Claim], buyer_id: int, now) -> tuple[list[str], list, str, list[str]]:
    """The claims as chained parts of one data-modifying CTE (PostgreSQL): each part takes
    only if the one before returned a row, so the parts run in order. Returns the parts
    (``claim0 AS (...)``, ...), their parameters, the name of the last part (the row that
    says all were taken) and the columns to select (``claimN.column``) for
    ``claims_results``.

    A counter claim (ordered first) is two parts: ``claimN`` locks its row (``SELECT ...
    FOR UPDATE``, materialised; its column says whether it could be taken) and
    ``takenN``, after every units and allowance part, takes it: a row locked and checked
    by the same statement cannot refuse, so a counter never refuses after a write."""
    parts, params, columns, after = [], [], [], None
    for i, claim in enumerate(claims):
        name = f"claim{i}"
        if claim.kind == "counter":
            sql, claim_params = claim.lock_statement(buyer_id=buyer_id, now=now, after=after)
            parts.append(f"{name} AS MATERIALIZED ({sql})")
        else:
            sql, claim_params = claim.statement(buyer_id=buyer_id, now=now, after=after)
            parts.append(f"{name} AS ({sql})")
        params += claim_params
        columns += [f"{name}.{column}" for column in claim.columns]
        after = name
    for i, claim in enumerate(claims):
        if claim.kind == "counter":
            name = f"taken{i}"
            sql, claim_params = claim.statement(buyer_id=buyer_id, now=now, after=after)
            parts.append(f"{name} AS ({sql})")
            params += claim_params
            after = name
    return parts, params, after, columns


def claims_results(*, claims: list[Claim], values: tuple, now) -> list[tuple]:
    """Split the selected ``values`` of ``claims_chain``'s columns per claim; raise why the
    first claim that took nothing refused (the ones after it took nothing either)."""
    results, at = [], 0
    for claim in claims:
        row = tuple(values[at : at + len(claim.columns)])
        at += len(claim.columns)
        if row[0] is None:
            claim.refused(now=now)
        results.append(row)
    return results


def taken_event(*, claim: Claim, row: tuple, line: LineRef) -> tuple[str, dict, list] | None:
    """The counter event of a units claim that was taken (``stock.changed``, ``deal.changed``;
    None for a count nobody watches: a deal's early sales before it opens)."""
    return units_source_for(claim.source).taken_event(id=claim.target, available=row[0], version=row[1], line=line)


@dataclass(frozen=True)
class GiveBack:
    """Units of an order line to give back: ``unit_source`` as the line recorded it (see
    ``unit_source_key``), the line's stock row, how many."""

    unit_source: str
    stock_level_id: int
    quantity: int
    line: LineRef


def units_give_back(give_backs: list[GiveBack]) -> list[tuple[str, dict, list]]:
    """Give lines' units back where they came from, locking rows in the claims' global
    order, so that a release or a refund cannot deadlock with a buy: first every offer row
    (by source and id; each says whether its units go back to it or, once it closed, to
    which stock row), then the stock rows by id. Returns the counter events to emit, in
    that order. Precondition: inside ``transaction.atomic()``."""
    offers: dict[tuple[str, int], int | None] = {}
    taken: dict[tuple[str, int], GiveBack] = {}  # one line per offer: lines of an order have distinct SKUs
    for gb in give_backs:
        if gb.unit_source:
            source, _, target = gb.unit_source.partition(":")
            offers[(source, int(target))] = None
            taken[(source, int(target))] = gb
    for source, target in sorted(offers):
        gb = taken[(source, target)]
        offers[(source, target)] = units_source_for(source).lock_for_return(
            id=target, quantity=gb.quantity, stock_level_id=gb.stock_level_id
        )
    events, to_stock = [], []
    for gb in give_backs:
        if not gb.unit_source:
            to_stock.append((gb.stock_level_id, gb))
            continue
        source, _, target = gb.unit_source.partition(":")
        level_id = offers[(source, int(target))]
        if level_id is None:  # back to the offer (a deal still open)
            events.append((source, int(target), gb))
        else:
            to_stock.append((level_id, gb))
    out = [
        units_source_for(source).give_back(id=target, quantity=gb.quantity, line=gb.line)
        for source, target, gb in sorted(events, key=lambda e: (e[0], e[1]))
    ]
    stock = units_source_for(STOCK)
    out += [
        stock.give_back(id=level_id, quantity=gb.quantity, line=gb.line)
        for level_id, gb in sorted(to_stock, key=lambda e: e[0])
    ]
    return out


def counters_give_back(redemptions: list[str]) -> list[tuple[str, dict, list]]:
    """Give a released order's redemptions (``Order.redemptions``: ``<source>:<id>``) back
    through their counter sources, locking their rows in the claims' global order (by
    source and id, before any units: a buy locks its counters first). Returns the events
    to emit. Precondition: inside ``transaction.atomic()``."""
    keys = sorted({(source, int(target)) for source, _, target in (r.partition(":") for r in redemptions)})
    events: list[tuple[str, dict, list]] = []
    for source, target in keys:
        events += counter_source_for(source).give_back(id=target)
    return events


def allowance_give_back(*, buyer_id: int, key: str, quantity: int) -> None:
    if key:
        allowance_return(buyer_id=buyer_id, key=key, quantity=quantity)


@units_source(STOCK)
class StockUnits:
    """Units out of a SKU's stock row (apps.catalog.services)."""

    def take_statement(self, *, id: int, quantity: int, now, after: str | None) -> tuple[str, list]:
        return stock_take_statement(level_id=id, quantity=quantity, after=after)

    def refused(self, *, id: int, now, sku: str) -> NoReturn:
        raise InsufficientStock(sku=sku)

    def taken_event(self, *, id: int, available: int, version: int, line: LineRef) -> tuple[str, dict, list]:
        count = StockCount(id, available, version)
        return stock_changed_event(sku_id=line.sku_id, sku_code=line.sku_code, shop_id=line.shop_id, level=count)

    def lock_for_return(self, *, id: int, quantity: int, stock_level_id: int) -> None:
        return None  # a stock row takes its units back itself

    def give_back(self, *, id: int, quantity: int, line: LineRef) -> tuple[str, dict, list]:
        count = stock_return(level_id=id, quantity=quantity)
        return stock_changed_event(sku_id=line.sku_id, sku_code=line.sku_code, shop_id=line.shop_id, level=count)


class SingleUseCounter:
    """A counter source (``@counter_source``) for a row a buyer uses once: a coupon, a perk.
    Taken while the row is the buyer's, its ``used`` column is empty and ``usable`` (the
    subclass's extra condition on the row, parameterised by ``now`` only) holds; taking it
    sets ``used`` to the buy's moment. Subclasses set ``model`` and ``used`` and write
    ``usable``, ``refused`` (why nothing was taken) and ``give_back``."""

    model: type
    used: str

    def usable(self, n) -> str:
        """An SQL condition on the row (``n``: its ``names``) with one ``%s``: ``now``."""
        raise NotImplementedError

    @property
    def column(self) -> str:
        return names(self.model).id

    def _condition(self) -> str:
        n = names(self.model)
        return f"{n.id} = %s AND {n.user_id} = %s AND {getattr(n, self.used)} IS NULL AND ({self.usable(n)})"

    def lock_statement(self, *, id: int, buyer_id: int, now, after: str | None) -> tuple[str, list]:
        n = names(self.model)
        # Identifiers from the model's meta; ``after`` is a CTE name from our code; values are parameters.
        return (
            f"SELECT {n.id} FROM {n.table} WHERE {self._condition()}{after_gate(after)} FOR UPDATE",  # noqa: S608
            [id, buyer_id, connection.ops.adapt_datetimefield_value(now)],
        )

    def take_statement(self, *, id: int, buyer_id: int, now, after: str | None) -> tuple[str, list]:
        n = names(self.model)
        when = connection.ops.adapt_datetimefield_value(now)
        return (
            f"UPDATE {n.table} SET {getattr(n, self.used)} = %s "  # noqa: S608 - names from meta
            f"WHERE {self._condition()}{after_gate(after)} RETURNING {n.id}",
            [when, id, buyer_id, when],
        )
