"""Writes to the catalog: products, SKUs, prices and stock.

Stock moves only through the functions in this module. Taking stock is one conditional
UPDATE (``available >= n`` in its WHERE clause), never a read-modify-write in Python, so no
interleaving of requests can oversell; the CHECK constraint on ``available`` backs it up.
Each takes keyword arguments and must run inside the caller's transaction, next to the
order rows that justify the change.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import Shop
from creatorcommerce.spine.events import emit
from creatorcommerce.sql import after_gate, names

from .exceptions import (
    BuyerLimitExceeded,
    DuplicateSkuCode,
    InsufficientStock,
    InvalidBundle,
    InvalidStockChange,
    LocationNotFound,
    StockLimitExceeded,
    StockOwnedByEdge,
)
from .models import SKU, BundleItem, BundleRule, BuyerAllowance, Location, Product, StockLevel
from .selectors import bundle_card, bundles_with_sku

# The most units a creator may put on one stock level (by ``set`` or ``add``). Well below the
# column's 2**31 - 1, leaving headroom for units given back by releases, which are never refused.
MAX_STOCK_PER_LEVEL = 1_000_000_000
CENTS = Decimal("0.01")


def sku_groups(sku_id: int) -> list[str]:
    """Channels groups that follow one SKU (stream pages join the groups of their pins)."""
    return [f"sku.{sku_id}"]


def stock_changed_event(*, sku_id: int, sku_code: str, shop_id: int, level: StockCount) -> tuple[str, dict, list]:
    """The ``stock.changed`` event for a count: absolute ``available`` and the row's
    ``version``, so consumers can drop anything older than what they hold."""
    payload = {
        "sku": sku_code,
        "sku_id": sku_id,
        "shop": shop_id,
        "level": level.level_id,
        "available": level.available,
        "version": level.version,
    }
    return "stock.changed", payload, sku_groups(sku_id)


def stock_changed_emit(*, sku_id: int, sku_code: str, shop_id: int, level: StockCount) -> None:
    event_type, payload, groups = stock_changed_event(sku_id=sku_id, sku_code=sku_code, shop_id=shop_id, level=level)
    emit(event_type, payload, groups=groups)


# -- hot path: plain SQL, one statement each ------------------------------------------------


class StockCount(NamedTuple):
    level_id: int
    available: int
    version: int


def stock_take(*, level_id: int, quantity: int) -> StockCount:
    """Take ``quantity`` units from a stock level; return what is left and its version.

    Precondition: inside ``transaction.atomic()``. The row lock taken by the UPDATE is held
    until the caller commits, which orders concurrent takers of the same row.
    Raises InsufficientStock (nothing changed) if fewer than ``quantity`` are available.
    """
    with connection.cursor() as cursor:
        cursor.execute(*stock_take_statement(level_id=level_id, quantity=quantity))
        row = cursor.fetchone()
    if row is None:
        raise InsufficientStock()
    return StockCount(level_id, row[0], row[1])


def stock_take_statement(*, level_id: int, quantity: int, after: str | None = None) -> tuple[str, list]:
    """``stock_take``'s conditional UPDATE (SQL and parameters), also a part of the buy's
    single-statement reserve: it returns ``available, version``, or no row when refused.
    With ``after`` (the name of an earlier part of that statement), it takes only if that
    part returned a row, and after it (docs/pricing.md, "Claims")."""
    n = names(StockLevel)
    # Identifiers from the model's meta; ``after`` is a CTE name from our code; values are parameters.
    gate = after_gate(after)
    return (
        f"UPDATE {n.table} SET {n.available} = {n.available} - %s, {n.version} = {n.version} + 1, "  # noqa: S608
        f"{n.updated_at} = CURRENT_TIMESTAMP WHERE {n.id} = %s AND {n.available} >= %s{gate} "
        f"RETURNING {n.available} AS available, {n.version} AS version",
        [quantity, level_id, quantity],
    )


def stock_return(*, level_id: int, quantity: int, limit: int | None = None) -> StockCount:
    """Give ``quantity`` units back (declined payment, expired reservation), or add new units.

    Without ``limit`` (releases) this never refuses: the units came out of this row. With
    ``limit`` (a creator adding stock) the UPDATE only applies while the new count stays
    within it; otherwise StockLimitExceeded is raised and nothing changes.
    Precondition: inside ``transaction.atomic()`` (the row stays locked between the UPDATE
    and the read of what it left).
    """
    rows = StockLevel.objects.filter(pk=level_id)
    if limit is not None:
        if quantity > limit:
            raise StockLimitExceeded(limit=limit)
        # ``available <= limit - quantity``, not ``available + quantity <= limit``: the sum
        # itself could be out of the column's range.
        rows = rows.filter(available__lte=limit - quantity)
    changed = rows.update(available=F("available") + quantity, version=F("version") + 1, updated_at=timezone.now())
    if not changed:
        if limit is not None:
            raise StockLimitExceeded(limit=limit)
        raise StockLevel.DoesNotExist(level_id)
    return _count(level_id)


def stock_set(*, level_id: int, available: int) -> StockCount:
    """Set the count outright (a creator's stock take). Precondition: inside a transaction."""
    StockLevel.objects.filter(pk=level_id).update(
        available=available, version=F("version") + 1, updated_at=timezone.now()
    )
    return _count(level_id)


def _count(level_id: int) -> StockCount:
    available, version = StockLevel.objects.values_list("available", "version").get(pk=level_id)
    return StockCount(level_id, available, version)


def allowance_take(*, buyer_id: int, key: str, quantity: int, limit: int) -> int:
    """Count ``quantity`` more units against a buyer's per-buyer ``limit`` named ``key``
    (``sku:<id>``, ``deal:<id>``, ...); return the new total.

    One upsert whose UPDATE arm only applies while the total stays within the limit, so
    parallel requests of one buyer serialise on the row and cannot pass it together.
    Precondition: inside ``transaction.atomic()``.
    """
    with connection.cursor() as cursor:
        cursor.execute(*allowance_take_statement(buyer_id=buyer_id, key=key, quantity=quantity, limit=limit))
        row = cursor.fetchone()
    if row is None:
        raise BuyerLimitExceeded(limit=limit)
    return row[0]


def allowance_take_statement(
    *, buyer_id: int, key: str, quantity: int, limit: int, after: str | None = None
) -> tuple[str, list]:
    """``allowance_take``'s upsert (SQL and parameters); it returns ``units``, or no row when
    refused. With ``after`` (the name of an earlier part of a CTE: the buy's single-statement
    reserve), the row is counted only if that part returned a row. Raises
    BuyerLimitExceeded at once when ``quantity`` alone is over the limit (the INSERT arm
    has no condition of its own)."""
    if quantity > limit:
        raise BuyerLimitExceeded(limit=limit)
    n = names(BuyerAllowance)
    # Selected from ``after``, the values are cast to their columns' types (from the model).
    selected = f"SELECT {n.cast('buyer_id')}, {n.cast('key')}, {n.cast('units')} FROM {after}"  # noqa: S608 - a CTE name from our code
    values = "VALUES (%s, %s, %s)" if after is None else selected
    # Identifiers and types from the model's meta; values are parameters.
    return (
        f"INSERT INTO {n.table} ({n.buyer_id}, {n.key}, {n.units}) {values} "
        f"ON CONFLICT ({n.buyer_id}, {n.key}) DO UPDATE SET {n.units} = {n.table}.{n.units} + EXCLUDED.{n.units} "
        f"WHERE {n.table}.{n.units} + EXCLUDED.{n.units} <= %s RETURNING {n.units} AS units",
        [buyer_id, key, quantity, limit],
    )


def allowance_return(*, buyer_id: int, key: str, quantity: int) -> None:
    """Give ``quantity`` units back to a buyer's allowance (a released order); never below zero."""
    BuyerAllowance.objects.filter(buyer_id=buyer_id, key=key, units__gte=quantity).update(units=F("units") - quantity)


# -- creator operations -------------------------------------------------------------------


def location_default(*, shop: Shop) -> Location:
    """The shop's default location, created on first use."""
    location = Location.objects.filter(shop=shop, is_default=True).first()
    if location is not None:
        return location
    try:
        with transaction.atomic():
            return Location.objects.create(shop=shop, name="Main warehouse", is_default=True)
    except IntegrityError:  # created concurrently
        return Location.objects.get(shop=shop, is_default=True)


@transaction.atomic
def location_ensure(
    *, shop: Shop, name: str, kind: str = Location.Kind.WAREHOUSE, address: str = "", default_if_none: bool = False
) -> Location:
    """The shop's location named ``name``, created if missing, its kind and address set as
    given (an edge applying the cloud's catalog, docs/edge.md); with ``default_if_none`` it
    becomes the shop's default location (buys take from it) if the shop has none yet.
    Idempotent; no event (no page shows locations live)."""
    location, created = Location.objects.get_or_create(
        shop=shop, name=name, defaults={"kind": kind, "address": address}
    )
    if not created and (location.kind, location.address) != (kind, address):
        location.kind, location.address = kind, address
        location.save(update_fields=["kind", "address"])
    if default_if_none and not location.is_default and not Location.objects.filter(shop=shop, is_default=True).exists():
        location.is_default = True
        location.save(update_fields=["is_default"])
    return location


@transaction.atomic
def venue_hand_over(*, location: Location, node: str) -> dict[str, int]:
    """Hand a venue location's stock to the edge ``node`` (docs/edge.md, "Catalog to the
    edge"): from now on the edge owns it (``owner_node``), and this node's rows there are
    set to 0 (each a ``stock.changed``), so no buy here can take units the edge sells.
    Returns the units each SKU code held when handed over: the edge's allocation.

    Race-safe: the location's row is locked first (stock_adjust reads the owner under the
    same lock), then its stock rows in id order as buys lock them; a buy that took units
    before commits first and its units are not handed over, one after finds 0. Raises
    StockOwnedByEdge if another node owns the location already; returns {} if ``node`` does
    (the handover happened)."""
    owner = Location.objects.select_for_update().values_list("owner_node", flat=True).get(pk=location.pk)
    if owner == node:
        return {}
    if owner:
        raise StockOwnedByEdge(node=owner)
    Location.objects.filter(pk=location.pk).update(owner_node=node)
    location.owner_node = node
    allocation = {}
    rows = (
        StockLevel.objects.select_for_update(of=("self",))
        .filter(location=location)
        .select_related("sku")
        .order_by("pk")
    )
    for level in rows:
        allocation[level.sku.code] = level.available
        if level.available:
            count = stock_set(level_id=level.pk, available=0)
            stock_changed_emit(sku_id=level.sku_id, sku_code=level.sku.code, shop_id=level.sku.shop_id, level=count)
    return allocation


@transaction.atomic
def product_create(
    *, shop: Shop, title: str, description: str = "", skus: list[dict], image_url: str = "", is_active: bool = True
) -> Product:
    """Create a product with its SKUs and their opening stock at the default location.

    ``skus``: ``[{"code", "price", "currency"?, "stock"?, "title"?, "per_buyer_limit"?}]``,
    already validated for shape. Raises DuplicateSkuCode (nothing written) if a code is
    taken in this shop or repeated in the request, also when a concurrent request takes it
    first; StockLimitExceeded if an opening stock is above MAX_STOCK_PER_LEVEL.
    """
    codes = [s["code"] for s in skus]
    if len(set(codes)) != len(codes) or SKU.objects.filter(shop=shop, code__in=codes).exists():
        raise DuplicateSkuCode()
    if any(s.get("stock", 0) > MAX_STOCK_PER_LEVEL for s in skus):
        raise StockLimitExceeded(limit=MAX_STOCK_PER_LEVEL)
    location = location_default(shop=shop)
    product = Product.objects.create(
        shop=shop, title=title, description=description, image_url=image_url, is_active=is_active
    )
    try:
        # The check above is only a fast path: a concurrent request can insert the same
        # code after it. The unique constraint decides; its savepoint keeps the error clean.
        with transaction.atomic():
            for spec in skus:
                sku = SKU.objects.create(
                    product=product,
                    shop=shop,
                    code=spec["code"],
                    title=spec.get("title", ""),
                    price=spec["price"],
                    currency=spec.get("currency") or shop.currency,
                    per_buyer_limit=spec.get("per_buyer_limit"),
                )
                # As stored (numeric(12, 2)): "1e1" or 5 as "10.00", "5.00".
                _sku_event("sku.created", sku, price=Decimal(str(sku.price)).quantize(CENTS), currency=sku.currency)
                level = StockLevel.objects.create(sku=sku, location=location, available=spec.get("stock", 0))
                count = StockCount(level.pk, level.available, level.version)
                stock_changed_emit(sku_id=sku.pk, sku_code=sku.code, shop_id=shop.pk, level=count)
    except IntegrityError as exc:
        if _violates(exc, "catalog_sku_code_per_shop", sqlite_columns="catalog_sku.shop_id, catalog_sku.code"):
            raise DuplicateSkuCode() from exc
        raise
    emit("product.created", {"product": product.pk, "shop": shop.pk, "skus": codes}, groups=[f"shop.{shop.pk}"])
    return product


def _violates(exc: IntegrityError, constraint: str, *, sqlite_columns: str) -> bool:
    """Whether ``exc`` is a violation of the unique constraint named ``constraint``.

    PostgreSQL names the constraint (``diag.constraint_name``); SQLite only lists the
    columns of the violated unique index: "UNIQUE constraint failed: <sqlite_columns>".
    """
    diag = getattr(exc.__cause__, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        return diag.constraint_name == constraint
    return str(exc) == f"UNIQUE constraint failed: {sqlite_columns}"


@transaction.atomic
def stock_adjust(
    *,
    sku: SKU,
    location: Location | None = None,
    set_to: int | None = None,
    add: int | None = None,
    as_node: str | None = None,
):
    """A creator sets the available units (``set_to``) or adds/removes some (``add``).

    Runs as conditional UPDATEs like the buy path, so it never races a buy into a negative
    count: removing more than is available raises InsufficientStock and changes nothing;
    going above MAX_STOCK_PER_LEVEL raises StockLimitExceeded and changes nothing.
    A location whose stock an edge node owns (``Location.owner_node``, docs/edge.md) is
    refused with StockOwnedByEdge, unless ``as_node`` names that node (the sync plane
    applying the edge's own report). The owner is read under the location's row lock, which
    ``venue_hand_over`` holds while it hands the units over: no change slips in between.
    """
    if (set_to is None) == (add is None):
        raise InvalidStockChange()
    if set_to is not None and set_to > MAX_STOCK_PER_LEVEL:
        raise StockLimitExceeded(limit=MAX_STOCK_PER_LEVEL)
    if location is None:
        location = location_default(shop=sku.shop)
    elif location.shop_id != sku.shop_id:
        raise LocationNotFound()
    owner = Location.objects.select_for_update().values_list("owner_node", flat=True).get(pk=location.pk)
    if owner and owner != as_node:
        raise StockOwnedByEdge(node=owner)
    level, _ = StockLevel.objects.get_or_create(sku=sku, location=location)
    if set_to is not None:
        count = stock_set(level_id=level.pk, available=set_to)
    elif add >= 0:
        count = stock_return(level_id=level.pk, quantity=add, limit=MAX_STOCK_PER_LEVEL)
    else:
        count = stock_take(level_id=level.pk, quantity=-add)
    stock_changed_emit(sku_id=sku.pk, sku_code=sku.code, shop_id=sku.shop_id, level=count)
    level.available, level.version = count.available, count.version
    return level


@transaction.atomic
def sku_set_price(*, sku_id: int, price: Decimal, currency: str | None = None, source: str = "creator") -> SKU:
    """Change a SKU's price (a creator, or a price-tracking webhook) and emit price.changed."""
    sku = SKU.objects.select_for_update().get(pk=sku_id)
    if sku.price == price and (currency is None or currency == sku.currency):
        return sku
    old = sku.price
    sku.price = price
    if currency:
        sku.currency = currency
    sku.save(update_fields=["price", "currency", "updated_at"])
    emit(
        "price.changed",
        {
            "sku": sku.code,
            "sku_id": sku.pk,
            "shop": sku.shop_id,
            "price": price,
            "old_price": old,
            "currency": sku.currency,
            "source": source,
        },
        groups=sku_groups(sku.pk),
    )
    # The bundles it is part of cost something else now: their viewers see the new price
    # live (docs/geofences.md).
    for rule in bundles_with_sku(sku_id=sku.pk):
        _bundle_event("bundle.updated", rule)
    return sku


# A SKU's price and currency change only through sku_set_price, which emits price.changed
# (stream pages show prices from those events); sku_update writes its other columns.
SKU_PRICE_FIELDS = ("price", "currency")
_SKU_COLUMNS = frozenset(field.name for field in SKU._meta.concrete_fields if not field.primary_key)


@transaction.atomic
def sku_update(*, sku: SKU, changed, source: str = "admin") -> SKU:
    """Save the ``changed`` fields of an edited ``sku``: the columns other than price and
    currency with an UPDATE of those columns only (so nothing is written back from a stale
    row), emitting ``sku.updated``; then a price or currency change through sku_set_price.
    The SKU's values are taken as given (the admin's form validated them)."""
    changed = list(dict.fromkeys(changed))
    fields = [name for name in changed if name in _SKU_COLUMNS and name not in SKU_PRICE_FIELDS]
    if fields:
        sku.save(update_fields=[*fields, "updated_at"])
        _sku_event("sku.updated", sku, changed=fields)
    if "price" in changed or "currency" in changed:
        price = sku.price if "price" in changed else SKU.objects.values_list("price", flat=True).get(pk=sku.pk)
        fresh = sku_set_price(
            sku_id=sku.pk, price=price, currency=sku.currency if "currency" in changed else None, source=source
        )
        sku.price, sku.currency = fresh.price, fresh.currency
    return sku


def _sku_event(event_type: str, sku: SKU, **extra) -> None:
    payload = {
        "sku": sku.code,
        "sku_id": sku.pk,
        "shop": sku.shop_id,
        "product": sku.product_id,
        "title": sku.title,
        "per_buyer_limit": sku.per_buyer_limit,
        "is_active": sku.is_active,
        **extra,
    }
    emit(event_type, payload, groups=[*sku_groups(sku.pk), f"shop.{sku.shop_id}"])


@transaction.atomic
def sku_add(*, product: Product, sku: SKU, stock: int = 0) -> SKU:
    """Add ``sku`` (unsaved, its fields set: the admin's form validated them) to ``product``,
    in the product's shop, with ``stock`` units at the default location; emits ``sku.created``
    and ``stock.changed``."""
    sku.product, sku.shop = product, product.shop
    sku.save()
    _sku_event("sku.created", sku, price=sku.price, currency=sku.currency)
    stock_adjust(sku=sku, set_to=stock)
    return sku


@transaction.atomic
def sku_delete(*, sku: SKU) -> None:
    """Delete a SKU (with its stock rows; one that has orders or flash deals is protected,
    ProtectedError: an open deal holds units taken from stock, and its control room and
    viewers would not be told);
    emits ``sku.deleted``, so pages that pinned it drop it (apps/streams/handlers.py)."""
    payload = {"sku": sku.code, "sku_id": sku.pk, "shop": sku.shop_id, "product": sku.product_id}
    sku.delete()
    emit("sku.deleted", payload, groups=[*sku_groups(payload["sku_id"]), f"shop.{payload['shop']}"])


@transaction.atomic
def product_delete(*, product: Product) -> None:
    """Delete a product: each SKU through ``sku_delete`` (so pages that pinned one drop it),
    then the product; emits ``product.deleted``. A SKU with orders or flash deals is
    protected (ProtectedError) and then nothing is deleted."""
    payload = {"product": product.pk, "shop": product.shop_id}
    for sku in product.skus.order_by("pk"):
        sku_delete(sku=sku)
    product.delete()
    emit("product.deleted", payload, groups=[f"shop.{payload['shop']}"])


PRODUCT_FIELDS = ("shop", "title", "description", "image_url", "is_active")


@transaction.atomic
def product_update(*, product: Product, changed) -> Product:
    """Save the ``changed`` fields of an edited ``product`` with an UPDATE of those columns
    only; emits ``product.updated`` (pins show a SKU's product title and image)."""
    fields = [name for name in dict.fromkeys(changed) if name in PRODUCT_FIELDS]
    if not fields:
        return product
    product.save(update_fields=fields)
    emit(
        "product.updated",
        {
            "product": product.pk,
            "shop": product.shop_id,
            "title": product.title,
            "image_url": product.image_url,
            "is_active": product.is_active,
            "changed": fields,
        },
        groups=[f"shop.{product.shop_id}"],
    )
    return product


# -- smart bundles (docs/geofences.md) ---------------------------------------------------


def bundle_rule_errors(*, rule: BundleRule, items: list[SKU]) -> dict[str, str]:
    """What is wrong with ``rule`` and its complementary ``items`` (field -> message; empty
    when nothing is): the admin shows them as field errors, ``bundle_rule_save`` refuses
    them."""
    errors: dict[str, str] = {}
    shop_id = rule.shop_id
    anchor = rule.anchor if rule.anchor_id else None
    if anchor is not None and anchor.shop_id != shop_id:
        errors["anchor"] = "Choose a SKU of your shop."
    if not items:
        errors["items"] = "Add at least one complementary SKU."
    elif any(sku.shop_id != shop_id for sku in items):
        errors["items"] = "Choose SKUs of your shop."
    elif anchor is not None and any(sku.pk == anchor.pk for sku in items):
        errors["items"] = "The anchor comes with the bundle already; choose other SKUs."
    elif len({sku.pk for sku in items}) != len(items):
        errors["items"] = "Each SKU once."
    elif anchor is not None and any(sku.currency != anchor.currency for sku in items):
        errors["items"] = "All SKUs of a bundle must be priced in one currency."
    if (rule.price is None) == (rule.percent is None):
        errors["price"] = "Give either a bundle price or a percent off (not both)."
    elif rule.percent is not None and not (0 < rule.percent <= 100):
        errors["percent"] = "A percent between 0.01 and 100."
    elif rule.price is not None and rule.price < 0:
        errors["price"] = "Not below zero."
    if rule.trigger == BundleRule.Trigger.LOW_STOCK:
        if rule.threshold is None:
            errors["threshold"] = "Say at how many units on site the bundle is offered."
        if rule.venue_id is None:
            errors["venue"] = "Choose the venue whose stock is watched."
        elif rule.venue.shop_id != shop_id or rule.venue.kind != Location.Kind.VENUE:
            errors["venue"] = "Choose a venue of your shop."
    elif rule.threshold is not None or rule.venue_id is not None:
        errors["trigger"] = "A threshold and a venue only go with the low-stock trigger."
    return errors


def _bundle_event(event_type: str, rule: BundleRule, *, previous_anchor: int | None = None) -> None:
    """``bundle.created`` / ``bundle.updated``: the bundle as storefronts show it, to the
    groups of its anchor (stream pages that pin it) and of its shop; also to a previous
    anchor's group when the anchor changed (those pages drop it)."""
    anchor_groups = sku_groups(rule.anchor_id)
    if previous_anchor is not None and previous_anchor != rule.anchor_id:
        anchor_groups += sku_groups(previous_anchor)
    payload = {**bundle_card(rule), "shop": rule.shop_id, "anchor_id": rule.anchor_id}
    emit(event_type, payload, groups=[*anchor_groups, f"shop.{rule.shop_id}"])


@transaction.atomic
def bundle_rule_save(*, rule: BundleRule, items: list[SKU]) -> BundleRule:
    """Create or update a bundle rule (``rule``, its fields set, saved or not) with exactly
    ``items`` as its complementary SKUs; emits ``bundle.created`` or ``bundle.updated``.
    Raises InvalidBundle (nothing written) with ``errors`` (field -> message)."""
    errors = bundle_rule_errors(rule=rule, items=items)
    if errors:
        raise InvalidBundle(errors=errors)
    created = rule.pk is None
    previous_anchor = None
    if not created:
        previous_anchor = BundleRule.objects.filter(pk=rule.pk).values_list("anchor_id", flat=True).first()
    rule.save()
    wanted = [sku.pk for sku in items]
    BundleItem.objects.filter(rule=rule).exclude(sku_id__in=wanted).delete()
    have = set(BundleItem.objects.filter(rule=rule).values_list("sku_id", flat=True))
    BundleItem.objects.bulk_create([BundleItem(rule=rule, sku_id=pk) for pk in wanted if pk not in have])
    rule = (
        BundleRule.objects.select_related("anchor__product", "venue")
        .prefetch_related("items__sku__product")
        .get(pk=rule.pk)
    )
    _bundle_event("bundle.created" if created else "bundle.updated", rule, previous_anchor=previous_anchor)
    return rule


@transaction.atomic
def bundle_rule_delete(*, rule: BundleRule) -> None:
    """Delete a bundle rule; emits ``bundle.deleted`` (storefronts drop its card)."""
    payload = {"bundle": rule.pk, "shop": rule.shop_id, "anchor_id": rule.anchor_id}
    rule.delete()
    emit("bundle.deleted", payload, groups=[*sku_groups(payload["anchor_id"]), f"shop.{payload['shop']}"])
