"""Catalog to the edge (docs/edge.md, "Catalog to the edge").

Cloud: ``GET /sync/v1/catalog`` answers an edge, authenticated by a short-lived token its
node key signed (``request_verify``), with its shop's catalog and its venue's allocation
(``catalog_document``); the first answer hands the venue's stock over (``venue_take``),
exactly once.

Edge: ``catalog_pull`` fetches that document (no database transaction open across the HTTP
call) and ``catalog_apply`` applies it in one transaction through the catalog and accounts
services, idempotently: a second pull of the same catalog writes nothing and emits
nothing. The allocation sets the venue's stock once; after that the edge owns it and no
pull touches it. A failed pull backs off like the relay (SYNC_BACKOFF_*).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections import Counter
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections, transaction
from django.utils import timezone

from apps.accounts.models import Shop
from apps.accounts.services import shop_mirror
from apps.catalog.models import SKU, Location, Product
from apps.catalog.services import (
    location_ensure,
    product_create,
    product_update,
    sku_add,
    sku_set_price,
    sku_update,
    stock_adjust,
    venue_hand_over,
)
from creatorcommerce.errors import DomainError
from creatorcommerce.process import PerProcess
from creatorcommerce.signing.services import jws_sign
from creatorcommerce.spine.events import emit

from .exceptions import NodeNotAssigned, SyncBatchInvalid, SyncUnauthorized
from .locks import SingleRun
from .models import CatalogState, Node, NodeAllocation
from .services import REQUEST_TYP, backoff_delay, node_token_open

log = logging.getLogger(__name__)

CATALOG_PATH = "/sync/v1/catalog"
#: ``Authorization: Node <token>`` (docs/edge.md).
AUTH_SCHEME = "Node"
PULL_LOCK = zlib.crc32(b"creatorcommerce.nodes.catalog_pull")


# -- the request token (edge signs, cloud verifies) ------------------------------------------


def request_token(path: str) -> str:
    """A token for one request to the cloud: ``{"node", "iat", "path"}`` signed with the node
    key (JWS compact, typ ``sync-request+jws``). Valid SYNC_REQUEST_MAX_AGE_SECONDS either side
    of ``iat``, for ``path`` only."""
    token, _kid = jws_sign(payload={"node": settings.NODE_ID, "iat": int(time.time()), "path": path}, typ=REQUEST_TYP)
    return token


def request_verify(*, authorization: str | None, path: str) -> Node:
    """The node an ``Authorization: Node <token>`` header authenticates for ``path``; raises
    SyncUnauthorized (401, ``code``: auth_required, invalid_signature, unknown_node,
    token_expired) otherwise. The signature is checked as a batch's is (node_token_open)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme != AUTH_SCHEME or not token.strip():
        raise SyncUnauthorized("Send Authorization: Node <token signed with the node key>.", code="auth_required")
    try:
        node, body = node_token_open(token.strip(), typ=REQUEST_TYP)
    except SyncUnauthorized:
        raise
    except SyncBatchInvalid as exc:  # not a JWS: as unauthenticated as a bad signature
        raise SyncUnauthorized("The token is not a JWS compact token.", code="invalid_signature") from exc
    try:
        claims = json.loads(body)
    except ValueError as exc:
        raise SyncUnauthorized("The token's payload is not JSON.", code="invalid_signature") from exc
    if not isinstance(claims, dict) or claims.get("node") != node.node_id or claims.get("path") != path:
        raise SyncUnauthorized("The token names another node or path.", code="invalid_signature")
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise SyncUnauthorized("The token has no iat.", code="invalid_signature")
    if abs(time.time() - iat) > settings.SYNC_REQUEST_MAX_AGE_SECONDS:
        raise SyncUnauthorized("The token is too old (or from the future): check the clocks.", code="token_expired")
    return node


# -- cloud -----------------------------------------------------------------------------------


def venue_take(node: Node) -> Node:
    """Hand the node's venue stock to it, once (docs/edge.md, "Catalog to the edge"): under
    the node's row lock, if it has not taken it yet, the cloud's units there become the
    node's allocation (``NodeAllocation``) and the cloud's rows go to 0, owned by the edge
    from now on (catalog.services.venue_hand_over). Concurrent first pulls serialise on the
    node's row; the second finds ``venue_taken_at`` set."""
    with transaction.atomic():
        node = Node.objects.select_for_update().get(pk=node.pk)
        if node.venue_taken_at is not None or node.venue_id is None:
            return node
        units = venue_hand_over(location=node.venue, node=node.node_id)
        now = timezone.now()
        NodeAllocation.objects.bulk_create(
            NodeAllocation(node=node, location=node.venue.name, sku=code, units=n, taken_at=now)
            for code, n in units.items()
        )
        node.venue_taken_at = now
        node.save(update_fields=["venue_taken_at"])
        emit(
            "node.venue_taken",
            {"node": node.node_id, "location": node.venue.name, "skus": len(units), "units": sum(units.values())},
        )
    return node


def catalog_document(node: Node) -> dict:
    """What ``GET /sync/v1/catalog`` answers ``node``: its shop, its venue, the shop's
    products with their SKUs and prices (names, not ids), and the venue's allocation."""
    shop = Shop.objects.select_related("owner").get(pk=node.shop_id)
    venue = node.venue
    products = []
    for product in Product.objects.filter(shop=shop).order_by("pk").prefetch_related("skus"):
        skus = sorted(product.skus.all(), key=lambda sku: sku.code)
        if not skus:
            continue
        products.append(
            {
                "title": product.title,
                "description": product.description,
                "image_url": product.image_url,
                "is_active": product.is_active,
                "skus": [
                    {
                        "code": sku.code,
                        "title": sku.title,
                        "price": format(sku.price, "f"),
                        "currency": sku.currency,
                        "per_buyer_limit": sku.per_buyer_limit,
                        "is_active": sku.is_active,
                    }
                    for sku in skus
                ],
            }
        )
    allocation = dict(NodeAllocation.objects.filter(node=node).order_by("sku").values_list("sku", "units"))
    return {
        "node": node.node_id,
        "shop": {
            "slug": shop.slug,
            "name": shop.name,
            "currency": shop.currency,
            "shipping_fee": format(shop.shipping_fee, "f"),
            "owner": shop.owner.email,
        },
        "venue": {"name": venue.name, "address": venue.address},
        "products": products,
        "allocation": {
            "taken_at": node.venue_taken_at.isoformat(),
            "location": venue.name,
            "units": allocation,
        },
    }


def catalog_serve(*, authorization: str | None, path: str) -> dict:
    """Authenticate the edge, hand its venue over if this is its first pull, and answer its
    catalog. Raises SyncUnauthorized (401) or NodeNotAssigned (409)."""
    node = request_verify(authorization=authorization, path=path)
    if node.shop_id is None or node.venue_id is None:
        raise NodeNotAssigned()
    node = venue_take(node)
    Node.objects.filter(pk=node.pk).update(catalog_pulled_at=timezone.now())
    return catalog_document(node)


# -- edge: apply -----------------------------------------------------------------------------


class CatalogInvalid(Exception):
    """A catalog document this edge cannot apply (nothing of it was applied)."""


def _decimal(value) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise CatalogInvalid(f"not an amount: {value!r}") from exc


def catalog_state(node: str | None = None) -> CatalogState:
    state, _ = CatalogState.objects.get_or_create(node=node or settings.NODE_ID)
    return state


def catalog_apply(doc: dict) -> dict:
    """Apply the cloud's catalog document, in one transaction, through the catalog services
    (their events as usual). Idempotent: what already equals the cloud's is not written.
    Returns the changes counted by kind (empty when nothing changed). Raises CatalogInvalid
    (nothing applied) for a document it cannot read."""
    try:
        with transaction.atomic():
            state = CatalogState.objects.select_for_update().get(pk=catalog_state().pk)
            return _apply(doc, state)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CatalogInvalid(f"malformed catalog: {exc!r}") from exc
    except (DomainError, DatabaseError) as exc:
        # A document this database refuses (a shop slug whose creator owns another shop
        # here, a SKU code taken...): its transaction rolled back; backed off and retried.
        raise CatalogInvalid(f"catalog refused here: {exc!r}") from exc


def _apply(doc: dict, state: CatalogState) -> dict:
    changes: Counter = Counter()
    spec = doc["shop"]
    shop = shop_mirror(
        slug=spec["slug"],
        name=spec["name"],
        currency=spec["currency"],
        shipping_fee=_decimal(spec["shipping_fee"]),
        owner_email=spec["owner"],
    )
    venue_spec = doc["venue"]
    venue = location_ensure(
        shop=shop,
        name=venue_spec["name"],
        kind=Location.Kind.VENUE,
        address=venue_spec.get("address") or "",
        default_if_none=True,
    )
    seen: set[str] = set()
    for product_spec in doc["products"]:
        _product_apply(shop, product_spec, changes, seen)
    for sku in SKU.objects.filter(shop=shop, is_active=True).exclude(code__in=seen).order_by("pk"):
        sku.is_active = False  # gone from the cloud's catalog: no longer sold here
        sku_update(sku=sku, changed=["is_active"], source="cloud")
        changes["skus_deactivated"] += 1

    allocation = doc["allocation"]
    taken_at = str(allocation["taken_at"])
    if not state.allocation_of:
        # The venue's stock, set once: from now on it is the edge's and no pull touches it.
        for code, units in sorted(allocation["units"].items()):
            sku = SKU.objects.filter(shop=shop, code=code).first()
            if sku is None:
                continue
            stock_adjust(sku=sku, location=venue, set_to=int(units))
            changes["stock_allocated"] += 1
        state.allocation_of, state.allocation_applied_at = taken_at, timezone.now()
        state.save(update_fields=["allocation_of", "allocation_applied_at"])
    elif state.allocation_of != taken_at:
        log.warning(
            "the cloud reports a venue handover at %s; this edge applied the one at %s", taken_at, state.allocation_of
        )
    return dict(changes)


_PRODUCT_FIELDS = ("title", "description", "image_url", "is_active")
_SKU_FIELDS = ("title", "per_buyer_limit", "is_active")


def _sku_values(spec: dict) -> dict:
    limit = spec.get("per_buyer_limit")
    return {
        "title": str(spec.get("title") or ""),
        "per_buyer_limit": None if limit is None else int(limit),
        "is_active": bool(spec.get("is_active", True)),
    }


def _product_apply(shop: Shop, spec: dict, changes: Counter, seen: set[str]) -> None:
    sku_specs = spec["skus"]
    codes = [str(sku["code"]) for sku in sku_specs]
    seen.update(codes)
    values = {
        "title": str(spec["title"]),
        "description": str(spec.get("description") or ""),
        "image_url": str(spec.get("image_url") or ""),
        "is_active": bool(spec.get("is_active", True)),
    }
    existing = {sku.code: sku for sku in SKU.objects.filter(shop=shop, code__in=codes).select_related("product")}
    if not existing:
        product = product_create(
            shop=shop,
            skus=[
                {
                    "code": code,
                    "price": _decimal(sku["price"]),
                    "currency": sku["currency"],
                    "title": str(sku.get("title") or ""),
                    "per_buyer_limit": _sku_values(sku)["per_buyer_limit"],
                    "stock": 0,
                }
                for code, sku in zip(codes, sku_specs, strict=True)
            ],
            **values,
        )
        changes["products_created"] += 1
        changes["skus_created"] += len(codes)
        for sku in SKU.objects.filter(
            product=product, code__in=[s["code"] for s in sku_specs if not _sku_values(s)["is_active"]]
        ):
            sku.is_active = False
            sku_update(sku=sku, changed=["is_active"], source="cloud")
        return
    product = next(iter(existing.values())).product
    changed = [name for name in _PRODUCT_FIELDS if getattr(product, name) != values[name]]
    if changed:
        for name in changed:
            setattr(product, name, values[name])
        product_update(product=product, changed=changed)
        changes["products_updated"] += 1
    for code, sku_spec in zip(codes, sku_specs, strict=True):
        price, currency, wanted = _decimal(sku_spec["price"]), str(sku_spec["currency"]), _sku_values(sku_spec)
        sku = existing.get(code)
        if sku is None:
            sku_add(product=product, sku=SKU(code=code, price=price, currency=currency, **wanted), stock=0)
            changes["skus_created"] += 1
            continue
        fields = [name for name in _SKU_FIELDS if getattr(sku, name) != wanted[name]]
        if fields:
            for name in fields:
                setattr(sku, name, wanted[name])
            sku_update(sku=sku, changed=fields, source="cloud")
            changes["skus_updated"] += 1
        if sku.price != price or sku.currency != currency:
            sku_set_price(sku_id=sku.pk, price=price, currency=currency, source="cloud")
            changes["prices_changed"] += 1


# -- edge: pull ------------------------------------------------------------------------------


class CatalogPullFailed(Exception):
    """The cloud did not answer a catalog (unreachable, timeout, non-200, not JSON)."""


def catalog_fetch() -> dict:
    """GET the node's catalog from the cloud, signed with the node key."""
    request = urllib.request.Request(  # noqa: S310 - CLOUD_URL is the operator's http(s) URL
        settings.CLOUD_URL + CATALOG_PATH,
        method="GET",
        headers={
            "Authorization": f"{AUTH_SCHEME} {request_token(CATALOG_PATH)}",
            "Accept": "application/json",
            "Connection": "close",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.SYNC_TIMEOUT_SECONDS) as response:  # noqa: S310
            doc = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        raise CatalogPullFailed(f"HTTP {exc.code}: {detail}") from exc
    except (OSError, ValueError) as exc:  # refused, reset, timeout, not JSON
        raise CatalogPullFailed(f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(doc, dict):
        raise CatalogPullFailed("the answer is not a JSON object")
    return doc


_pull_lock = SingleRun(PULL_LOCK)


def catalog_pull(*, force: bool = False) -> dict:
    """Pull the catalog from the cloud and apply it. Returns ``{"status", "changes"}``;
    ``status`` is ``applied``, ``failed`` (backing off), ``backoff`` (still waiting from an
    earlier failure; ``force`` ignores it), ``busy`` (another pull runs) or ``not_edge``."""
    if settings.NODE_ROLE != "edge":
        return {"status": "not_edge", "changes": {}}
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("the catalog pull must not run inside a transaction (it calls the network)")
    with _pull_lock() as got:
        if not got:
            return {"status": "busy", "changes": {}}
        state = catalog_state()
        if not force and state.next_attempt_at is not None and timezone.now() < state.next_attempt_at:
            return {"status": "backoff", "changes": {}}
        try:
            changes = catalog_apply(catalog_fetch())
        except (CatalogPullFailed, CatalogInvalid) as exc:
            delay = backoff_delay(state.failures + 1)
            now = timezone.now()
            CatalogState.objects.filter(pk=state.pk).update(
                failures=state.failures + 1,
                next_attempt_at=now + timedelta(seconds=delay),
                last_attempt_at=now,
                last_error=str(exc)[:300],
            )
            log.warning("catalog pull failed (%s); next attempt in %.1f s", exc, delay)
            return {"status": "failed", "changes": {}, "error": str(exc)}
        now = timezone.now()
        CatalogState.objects.filter(pk=state.pk).update(
            failures=0,
            next_attempt_at=None,
            last_attempt_at=now,
            last_success_at=now,
            last_error="",
            pulls=state.pulls + 1,
            last_changes=changes,
        )
        return {"status": "applied", "changes": changes}


class _Puller:
    """Embedded mode (no broker): a daemon thread per process runs the pulls, so the
    embedded scheduler never waits for the cloud."""

    def __init__(self):
        self.wake = threading.Event()
        threading.Thread(target=self._run, name="sync-catalog-pull", daemon=True).start()

    def _run(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            try:
                close_old_connections()
                catalog_pull()
            except Exception:  # the thread must live on; the next tick tries again
                log.exception("catalog pull failed")
            finally:
                connections.close_all()


_pullers: PerProcess[_Puller] = PerProcess(_Puller)


def catalog_pull_kick() -> None:
    """Wake this process's pull thread (embedded mode)."""
    _pullers.get().wake.set()
