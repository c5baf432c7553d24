"""Offer providers, registered by the apps that own the offers (docs/pricing.md).

    @offer_provider("deal")
    def deal_offers(*, buyer, lines, context): ...

An app registers its providers in its ``AppConfig.ready`` (as spine handlers are
declared), so pricing never imports the apps above it. A provider is read-only: given the
buyer (None for an anonymous viewer), the lines (``offers.Line``) and the ``offers.Context``,
it returns the offers (``offers.Offer``) that could apply; the stacking policy
(``apps.pricing.policy``) decides which do. Like oscar's ``Applicator.get_offers``, the
quote asks every provider; unlike it, offers never live in one table.

An app whose offers have units of their own also registers a units source
(``@units_source("deal")``, see ``apps.pricing.claims``): how the buy takes those units
and gives them back.

An app whose offers are single-use or capped registers a counter source
(``@counter_source("coupon")``): how the buy consumes one redemption and gives it back.

An app may also say which shop a context value names (``@context_shop("stream")``): a
quote in a stream looks SKUs up in that stream's shop.
"""

from __future__ import annotations

from collections.abc import Callable

_providers: dict[str, Callable] = {}
_context_shops: dict[str, Callable] = {}
_units_sources: dict[str, object] = {}
_context_shop_sql: dict[str, Callable] = {}
_buyer_flags: dict[str, Callable] = {}
_counter_sources: dict[str, object] = {}
_early_access: dict[str, Callable] = {}


def _register(table: dict[str, Callable], key: str, fn: Callable, what: str) -> Callable:
    existing = table.get(key)
    if existing is not None and existing is not fn:
        raise ValueError(f"two {what} are registered for {key!r}")
    table[key] = fn
    return fn


def offer_provider(source: str):
    """Register ``fn(*, buyer, lines, context) -> Iterable[Offer]`` for offers of ``source``."""
    return lambda fn: _register(_providers, source, fn, "offer providers")


def context_shop(name: str, *, sql: Callable[[str], str] | None = None):
    """Register ``fn(value) -> shop id`` for the context field ``name`` (raises its app's
    not-found error for an unknown value). ``sql(placeholder)``, if given, returns the same
    look-up as a scalar subquery (the shop's id, or NULL) for a hot-path statement that
    cannot afford a round trip of its own (the buy's one read)."""

    def register(fn):
        _register(_context_shops, name, fn, "shop resolvers")
        if sql is not None:
            _register(_context_shop_sql, name, sql, "shop subqueries")
        return fn

    return register


def shop_subquery(name: str, placeholder: str) -> str:
    """The registered subquery of ``context_shop(name, sql=...)``; NULL when none is."""
    sql = _context_shop_sql.get(name)
    return f"({sql(placeholder)})" if sql is not None else "NULL"


def buyer_flag(name: str):
    """Register ``fn(user_sql) -> (sql, params)``: a boolean SQL expression about the buyer
    (``user_sql`` is the buyer's id column; named parameters ``%(<name>_...)s``, including
    ``%(now)s``, the buy's moment) that the buy's one read selects for the provider of
    ``name``: the provider then skips its own query when the flag says there is nothing to
    find (``Context.buyer_flags``; a perk provider for a buyer without perks). A quote has no
    such read: its ``buyer_flags`` is None and providers query as before."""
    return lambda fn: _register(_buyer_flags, name, fn, "buyer flags")


def buyer_flags() -> list[tuple[str, Callable]]:
    return sorted(_buyer_flags.items())


def early_access(name: str):
    """Register ``fn(*, buyer, shop_id, context) -> offers.Access | None``: early access the
    signed-in ``buyer`` holds in ``shop_id`` (the loyalty app's ``early_access`` perks).
    Providers of offers that open at a set time (the streams app's flash deals) ask
    ``early_access_for`` and may offer them to the buyer that many minutes early."""
    return lambda fn: _register(_early_access, name, fn, "early access sources")


def early_access_for(*, buyer, shop_id: int, context):
    """The most generous early access any registered source gives ``buyer`` in ``shop_id``
    (None for an anonymous buyer or none)."""
    if buyer is None or not getattr(buyer, "is_authenticated", False):
        return None
    found = [a for _, fn in sorted(_early_access.items()) if (a := fn(buyer=buyer, shop_id=shop_id, context=context))]
    return max(found, key=lambda a: a.minutes, default=None)


def units_source(source: str):
    """Register a class whose instance takes, explains and gives back the units of offers
    of ``source`` (a flash deal's), for ``apps.pricing.claims``. Its methods:
    ``take_statement(*, id, quantity, now, after) -> (sql, params)`` (a conditional UPDATE
    returning ``available, version``, gated on the CTE part ``after`` when given),
    ``refused(*, id, now, sku)`` (raises why), ``taken_event(*, id, available, version,
    line)`` (None: no event), ``lock_for_return(*, id, quantity, stock_level_id)`` (locks
    the offer's row; returns None when the line's ``quantity`` given-back units go back to
    the offer, else the id of the stock row they go to, after the offer has counted them off
    its own count if it keeps one; ``stock_level_id``: the stock row the line recorded) and
    ``give_back(*, id, quantity, line)`` (units back to the offer; returns the event to
    emit, as ``taken_event`` does)."""

    return lambda cls: _register_class(_units_sources, source, cls, "units sources")


def units_source_for(source: str):
    return _registered(_units_sources, source, "units source")


def counter_source(source: str):
    """Register a class whose instance consumes, explains and gives back one redemption of
    a counter named ``(source, id)`` by an applied offer's ``redeem`` (a coupon's single
    use, a geo offer's cap), for ``apps.pricing.claims``. Its attribute ``column`` is the
    quoted column ``lock_statement`` selects; its methods:
    ``lock_statement(*, id, buyer_id, now, after) -> (sql, params)`` (a ``SELECT ... FOR
    UPDATE`` returning a row only while the counter can be taken: the buy's statement locks
    its counters first, so that taking them later in the statement cannot fail),
    ``take_statement(*, id, buyer_id, now, after) -> (sql, params)`` (the conditional
    UPDATE returning a row when taken), ``refused(*, id, now)`` (raises why nothing was
    taken), ``give_back(*, id) -> list[event]`` (a released order's redemption back; locks
    the row; returns the events to emit)."""

    return lambda cls: _register_class(_counter_sources, source, cls, "counter sources")


def counter_source_for(source: str):
    return _registered(_counter_sources, source, "counter source")


def _register_class(table: dict[str, object], source: str, cls: type, what: str) -> type:
    """Keep one instance of ``cls`` for ``source`` (registering the same class again is a
    no-op, as a re-imported module does)."""
    existing = table.get(source)
    if existing is not None and type(existing) is not cls:
        raise ValueError(f"two {what} are registered for {source!r}")
    table[source] = cls()
    return cls


def _registered(table: dict[str, object], source: str, what: str):
    try:
        return table[source]
    except KeyError:
        raise LookupError(f"no {what} is registered for {source!r}") from None


def providers() -> list[tuple[str, Callable]]:
    return list(_providers.items())


def shop_resolver(name: str) -> Callable | None:
    return _context_shops.get(name)


def unregister(source: str) -> None:
    """Remove a provider (tests register throwaway providers)."""
    _providers.pop(source, None)
