"""Offer providers, registered by the apps that own the offers (docs/pricing.md).

    @offer_provider("deal")
    def deal_offers(*, buyer, lines, context): ...

An app registers its providers in its ``AppConfig.ready`` (as spine handlers are
declared), so pricing never imports the apps above it. A provider is read-only: given the
buyer (None for an anonymous viewer), the lines (``offers.Line``) and the ``offers.Context``,
it returns the offers (``offers.Offer``) that could apply; the stacking policy
(``apps.pricing.policy``) decides which do. Like oscar's ``Applicator.get_offers``, the
quote asks every provider; unlike it, offers never live in one table.

An app may also say which shop a context value names (``@context_shop("stream")``): a
quote in a stream looks SKUs up in that stream's shop.
"""

from __future__ import annotations

from collections.abc import Callable

_providers: dict[str, Callable] = {}
_context_shops: dict[str, Callable] = {}


def _register(table: dict[str, Callable], key: str, fn: Callable, what: str) -> Callable:
    existing = table.get(key)
    if existing is not None and existing is not fn:
        raise ValueError(f"two {what} are registered for {key!r}")
    table[key] = fn
    return fn


def offer_provider(source: str):
    """Register ``fn(*, buyer, lines, context) -> Iterable[Offer]`` for offers of ``source``."""
    return lambda fn: _register(_providers, source, fn, "offer providers")


def context_shop(name: str):
    """Register ``fn(value) -> shop id`` for the context field ``name`` (raises its app's
    not-found error for an unknown value)."""
    return lambda fn: _register(_context_shops, name, fn, "shop resolvers")


def providers() -> list[tuple[str, Callable]]:
    return list(_providers.items())


def shop_resolver(name: str) -> Callable | None:
    return _context_shops.get(name)


def unregister(source: str) -> None:
    """Remove a provider (tests register throwaway providers)."""
    _providers.pop(source, None)
