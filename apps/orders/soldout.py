"""Sold out from memory: a buy this process knows cannot get its units is answered 409
``sold_out`` on the event loop, without the database (docs/buying.md, "Sold out from memory").

Two things are remembered per process, both learnt from buys that went to the database and
from the spine's events (creatorcommerce/soldout.py keeps the counts):

- **where a line's units come from** (a *route*): for a request's ``(shop, stream, sku)``,
  the counter its units claim takes from, as the buy's quote found it. Only where every
  buyer's claim is the same counter: without a stream, the SKU's stock row at the default
  location; in a stream, the flash deal open on the SKU (one at most; it prices every
  buyer's line, and its end is remembered: past it the line is priced without it). A
  stream's line without an open deal is not remembered (a buyer with early access may be
  sold a scheduled deal's units from another shelf), nor pickups, bundles or buys of
  another shape. A route is trusted for ``SOLDOUT_MEMORY_SECONDS`` after the last buy that
  used it (a SKU deleted and made again, a code another shop takes up);
- **which counters are at zero** (creatorcommerce/soldout.py: ``stock.changed`` and
  ``deal.*`` events, and the database's own refusals of one unit).

A buy body of the plain shape (``sku``/``quantity`` or ``lines``, with ``shop`` and/or
``stream``, nothing else) with a valid Idempotency-Key, one of whose lines has a route to a
counter known to be at zero now, is answered ``409 {"code": "sold_out", "message", "sku"}``
(the line whose claim the buy would take first, as the database names it). Nothing is
read or written: the answer is not stored under the Idempotency-Key (the key stays free, as
after ``checkout_incomplete``), and it comes before what the buy would check about the buyer
(their session, card and address, limits). The database's conditional UPDATE stays the only
arbiter of the last units: memory only ever refuses, and a stale "available" lets the buy
through to it.

A retry of a key whose answer a client never got must not be told "sold out" if the key
bought: the units it bought may be the last. So the memory answers no request that sends
``Cache-Control: no-cache`` (the storefront does on such a retry) nor a key this process
sent to the database lately (the last ``KEYS_KEPT``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings

from apps.catalog.exceptions import InsufficientStock
from apps.pricing.claims import STOCK, Claim
from creatorcommerce.admission import BUY_PATH, Answer, early_answer, json_answer
from creatorcommerce.api import error_body
from creatorcommerce.process import PerProcess
from creatorcommerce.soldout import memory

from .exceptions import IDEMPOTENCY_KEY_RE

DEAL = "deal"  # the claim source of a flash deal's units (apps.streams.units)
KEYS_KEPT = 50_000
ROUTES_KEPT = 50_000  # past this many, routes unused for SOLDOUT_MEMORY_SECONDS are dropped
MAX_LINES = 20
# A buy's body of 20 lines is under 2 KB; anything larger (or nested deeper than JSON's
# parser likes) is the view's to answer, after creatorcommerce/guard.py.
MAX_BODY = 4096
_BODY_KEYS = frozenset({"sku", "quantity", "lines", "shop", "stream"})
_LINE_KEYS = frozenset({"sku", "quantity"})


@dataclass(frozen=True, slots=True)
class Route:
    source: str
    id: int
    until: float | None  # a deal's end (epoch): after it the line is priced without the deal
    at: float  # time.monotonic() when a buy last found it


class Learnt:
    """Per process: the routes, and the Idempotency-Keys lately sent to the database."""

    def __init__(self):
        self.routes: dict[tuple[str | None, int | None, str], Route] = {}
        self.keys: OrderedDict[str, None] = OrderedDict()
        self.lock = threading.Lock()

    def key_sent(self, key: str) -> None:
        with self.lock:
            self.keys[key] = None
            self.keys.move_to_end(key)
            if len(self.keys) > KEYS_KEPT:
                self.keys.popitem(last=False)


_learnt: PerProcess[Learnt] = PerProcess(Learnt)


def learnt() -> Learnt:
    return _learnt.get()


def key_sent(key: str) -> None:
    """The buy view runs under ``key``: a later request with it goes to the database too."""
    learnt().key_sent(key)


def learn(*, shop_slug, stream_id, venue_id, bundle_id, quote, pairs: list[tuple[Claim, Claim | None]]) -> None:
    """What a buy's quote found (``order_place``): each line's route, or that it has none."""
    if venue_id is not None or bundle_id is not None:
        return
    now = time.monotonic()
    state = learnt()
    with state.lock:
        for (units, _), pl in zip(pairs, quote.lines, strict=True):
            key = (shop_slug, stream_id, pl.line.code)
            if stream_id is None and units.source == STOCK:
                state.routes[key] = Route(STOCK, units.target, None, now)
            elif stream_id is not None and units.source == DEAL:
                ends_at = pl.unit_source.ends_at
                state.routes[key] = Route(DEAL, units.target, ends_at.timestamp() if ends_at else None, now)
            else:
                state.routes.pop(key, None)
        if len(state.routes) > ROUTES_KEPT:  # ended streams' routes, SKUs no longer bought
            expired = now - settings.SOLDOUT_MEMORY_SECONDS
            state.routes = {key: route for key, route in state.routes.items() if route.at > expired}


def refused(error: Exception, *, since: int) -> None:
    """The database refused a claim of one unit for want of units: its counter is at zero
    (``since``: ``memory().mark()`` before the buy's read)."""
    claim = getattr(error, "claim", None)
    if not isinstance(error, InsufficientStock) or claim is None:
        return
    if claim.kind == "units" and claim.quantity == 1 and claim.source in (STOCK, DEAL):
        memory().observed_zero(claim.source, claim.target, since=since)


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _lines(data) -> tuple[str | None, int | None, list[tuple[str, int]]] | None:
    """The body's shop, stream and lines if it has the plain shape, else None (the view
    answers it, whatever it is)."""
    if type(data) is not dict or not data.keys() <= _BODY_KEYS:
        return None
    shop, stream = data.get("shop"), data.get("stream")
    if (shop is not None and type(shop) is not str) or (stream is not None and type(stream) is not int):
        return None
    if "lines" in data:
        raw = data["lines"]
        if "sku" in data or "quantity" in data or type(raw) is not list or not 1 <= len(raw) <= MAX_LINES:
            return None
    else:
        raw = [{key: data[key] for key in ("sku", "quantity") if key in data}]
    lines = []
    for line in raw:
        if type(line) is not dict or not line.keys() <= _LINE_KEYS:
            return None
        code, quantity = line.get("sku"), line.get("quantity", 1)
        if type(code) is not str or type(quantity) is not int or quantity < 1:
            return None
        lines.append((code, quantity))
    codes = {code for code, _ in lines}
    if len(codes) < len(lines) or sum(q for _, q in lines) > settings.ORDER_MAX_QUANTITY:
        return None
    return shop, stream, lines


@early_answer("POST", BUY_PATH, name="sold_out")
def answer(scope: dict, body: bytes) -> Answer | None:
    """409 sold_out if one of the buy's lines is known to be at zero; None: ask the database."""
    if not settings.SOLDOUT_MEMORY:
        return None
    key = _header(scope, b"idempotency-key")
    if key is None or len(body) > MAX_BODY or b"no-cache" in (_header(scope, b"cache-control") or b""):
        return None
    try:
        key = key.decode("ascii")
        parsed = _lines(json.loads(body))
    except (ValueError, RecursionError):  # not ASCII, not JSON, nested too deeply
        return None
    if parsed is None or not IDEMPOTENCY_KEY_RE.match(key):
        return None
    state = learnt()
    if key in state.keys:
        return None
    shop, stream, lines = parsed
    counts = memory()
    expires = time.monotonic() - settings.SOLDOUT_MEMORY_SECONDS
    first = None
    for code, _ in lines:
        route = state.routes.get((shop, stream, code))
        if route is None or route.at <= expires or not counts.at_zero(route.source, route.id, until=route.until):
            continue
        # The buy takes its claims in one order (apps.pricing.claims: deals before stock rows,
        # then by id) and names the first it cannot have: so does this.
        rank = (route.source, route.id)
        if first is None or rank < first[0]:
            first = (rank, code)
    if first is None:
        return None
    return json_answer(409, error_body(InsufficientStock.code, InsufficientStock.message, sku=first[1]))
