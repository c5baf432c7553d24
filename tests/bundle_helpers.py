"""Venues with stock, and smart bundles, for the on-site stock, pickup and bundle tests."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

from apps.catalog.models import BundleRule, Location, StockLevel
from apps.catalog.services import bundle_rule_save, stock_adjust

_keys = itertools.count()


def key(prefix="bundle"):
    return f"{prefix}-{next(_keys):06d}"


def make_venue(shop, *, name="Pop-up", stock=None, address="Market Square 1") -> Location:
    """A location of kind venue of ``shop`` with ``stock`` ({sku: units}) of its own."""
    venue = Location.objects.create(shop=shop, name=name, kind=Location.Kind.VENUE, address=address)
    for sku, units in (stock or {}).items():
        stock_adjust(sku=sku, location=venue, set_to=units)
    return venue


def make_bundle(shop, anchor, items, *, price=None, percent=None, venue=None, threshold=None, label="Bundle"):
    rule = BundleRule(
        shop=shop,
        label=label,
        anchor=anchor,
        trigger=BundleRule.Trigger.LOW_STOCK if venue is not None else BundleRule.Trigger.ALWAYS,
        threshold=threshold,
        venue=venue,
        price=Decimal(price) if price is not None else None,
        percent=Decimal(percent) if percent is not None else None,
    )
    return bundle_rule_save(rule=rule, items=list(items))


def at(sku, location) -> int:
    return StockLevel.objects.get(sku=sku, location=location).available


def default_at(sku) -> int:
    return StockLevel.objects.get(sku=sku, location__is_default=True).available


def post(client, url, body, **headers):
    return client.post(url, json.dumps(body), content_type="application/json", headers=headers)


def buy(client, body, k=None):
    return post(client, "/api/v1/orders/", body, **{"Idempotency-Key": k or key()})


def quote(client, body):
    return post(client, "/api/v1/quotes/", body)
