"""The buy path, checkout details, and what happens to orders afterwards.

A buy is three short steps, none of which holds a transaction across network I/O:

1. **reserve** (all or nothing; one statement on PostgreSQL): price the lines through the
   pricing layer (apps.pricing: the same quote ``POST /api/v1/quotes/`` answers), take
   every claim they make - units of a stock row or of an offer, per-buyer allowances -
   with conditional UPDATEs in one global order (apps.pricing.claims), and insert the
   order and its lines under the buyer's Idempotency-Key;
2. **authorize** the payment with the gateway (no transaction open), and sign the receipt;
3. **confirm** (all or nothing; one statement on PostgreSQL): mark the order paid - only if
   it is still reserved - and emit ``stock.changed`` and ``order.placed``; capture follows
   from the latter.

A decline gives the stock back at once; a process that dies between 1 and 3 leaves a
reservation that ``orders_release_expired`` gives back after the TTL. On an edge node
whose gateway cannot be reached, step 3 accepts a small buy offline instead, and
``orders_capture_offline`` authorises it later (docs/buying.md, "Offline selling").
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.audit.services import audit_record
from apps.catalog.exceptions import VenueNotFound
from apps.catalog.models import Location
from apps.pricing.claims import (
    Claim,
    GiveBack,
    LineRef,
    allowance_give_back,
    claims_atomic,
    claims_chain,
    claims_results,
    claims_take,
    counters_give_back,
    redemption_keys,
    taken_event,
    unit_source_key,
    units_give_back,
)
from apps.pricing.offers import Context
from apps.pricing.registry import shop_resolver
from apps.pricing.selectors import Quote, quote_refusals, quote_rows, refuse_duplicates, refuse_venue, resolve_lines
from creatorcommerce.errors import DomainError
from creatorcommerce.signing.services import receipt_sign
from creatorcommerce.soldout import memory
from creatorcommerce.spine.events import emit, emit_many_when
from creatorcommerce.sql import insert, insert_select, names, set_keys

from . import soldout
from .exceptions import (
    CheckoutIncomplete,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    OfflineOverFloorLimit,
    OrderAlreadyRefunded,
    OrderCapturePending,
    OrderNotPaid,
    RefundFailed,
    RefundNotAllowed,
    RefundReasonRequired,
    ReservationExpired,
)
from .models import Address, IdempotencyRecord, Order, OrderLine, PaymentMethod
from .payments import GatewayUnavailable, HoldNotAvailable, InvalidPaymentToken, PaymentDeclined, get_gateway
from .selectors import buy_context, line_body, order_body, pickup_body, shipping_body

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuyOutcome:
    """What the API answers: status and body, plus the order when there is one."""

    status: int
    body: dict
    order: Order | None = None
    replayed: bool = False


def request_fingerprint(body: dict) -> str:
    """A stable digest of the request body: same body, same fingerprint, whatever the key
    order or whitespace."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def order_place(
    *,
    buyer,
    idempotency_key: str,
    fingerprint: str,
    sku_code: str | None = None,
    quantity: int = 1,
    lines: list[tuple[str, int]] | None = None,
    shop_slug: str | None = None,
    stream_id: int | None = None,
    coupon: str | None = None,
    now=None,
    venue_id: int | None = None,
    bundle_id: int | None = None,
) -> BuyOutcome:
    """One-tap buy by ``buyer`` of ``lines`` ([(sku code, quantity)], 1-20 of one shop), or
    of ``quantity`` units of ``sku_code`` (the v1 body).

    With ``shop_slug`` or ``stream_id``, SKUs are looked up in that shop (the stream's),
    so another shop using the same code changes nothing (docs/buying.md, "Naming the
    shop"); with neither, a code several shops use answers ``ambiguous_sku``. The lines are
    priced by the pricing layer as a quote would price them (a flash deal open on a SKU
    in the stream applies its price, units and per-buyer limit), and taken all or nothing.
    The order keeps a copy of the buyer's address as it is now. With ``venue_id`` the buy
    is a pickup there: the lines take the venue's own stock rows, and no address is needed
    (docs/buying.md, "Pickup at a venue"). With ``bundle_id`` the lines are priced as that
    bundle (apps/pricing/bundles.py).

    Precondition: no transaction open (this function commits twice, and authorises the
    payment between the two). Never raises for business outcomes: sold out, over the limit,
    declined, an earlier answer under the same key... all come back as a BuyOutcome, and
    those that did not create an order are stored so that a retry gets the same answer.

    ``coupon``: a coupon code (the geofences app's provider values it at ``now``, the
    moment the claims are taken at; ``now`` defaults to the clock, tests pass their own).
    """
    now = now or timezone.now()
    lines = lines if lines is not None else [(sku_code, quantity)]
    codes = [code for code, _ in lines]
    where = {"shop_slug": shop_slug, "stream_id": stream_id, "venue_id": venue_id, "now": now}
    since = memory().mark()  # what a refusal teaches the memory is as of our read (soldout.py)
    context = buy_context(buyer_id=buyer.pk, key=idempotency_key, codes=codes, **where)
    replay = _replay(buyer=buyer, key=idempotency_key, fingerprint=fingerprint, context=context)
    if replay is not None:
        return replay

    def replay_now() -> BuyOutcome | None:
        """The answer a retry would get now: the key's order if one was committed since
        our read (by a parallel request with the same key)."""
        context = buy_context(buyer_id=buyer.pk, key=idempotency_key, codes=codes, **where)
        return _replay(buyer=buyer, key=idempotency_key, fingerprint=fingerprint, context=context)

    claiming = False
    try:
        quote = _checkout_quote(
            buyer=buyer,
            context=context,
            lines=lines,
            shop_slug=shop_slug,
            stream_id=stream_id,
            coupon=coupon,
            now=now,
            venue_id=venue_id,
            bundle_id=bundle_id,
        )
        # A pickup ships nothing: it needs a card but no address.
        pairs = quote.line_claims(buyer_id=buyer.pk)
        # Where each line's units come from, for the sold-out memory (apps/orders/soldout.py).
        soldout.learn(
            shop_slug=shop_slug, stream_id=stream_id, venue_id=venue_id, bundle_id=bundle_id, quote=quote, pairs=pairs
        )
        if context["payment_method_id"] is None or not (context["has_address"] or venue_id is not None):
            raise CheckoutIncomplete()
        quote_refusals(quote)
        claiming = True
        order, order_lines, taken = _reserve(
            buyer=buyer,
            quote=quote,
            key=idempotency_key,
            fingerprint=fingerprint,
            context=context,
            now=now,
            pairs=pairs,
        )
    except CheckoutIncomplete as exc:
        # Not remembered: the buyer saves a card and an address and retries with the same
        # key, and that retry must buy (nothing was written the first time).
        return _error_outcome(exc)
    except DomainError as exc:  # sold out, over the limit, unknown SKU
        # A claim refused: a parallel request with the same key may be what took those
        # units or that allowance since our read (its order then exists). This request
        # answers as a retry would, and stores no refusal under a key that bought.
        replay = replay_now() if claiming else None
        if replay is not None:
            return replay
        if claiming:
            soldout.refused(exc, since=since)
        return _remember_failure(buyer=buyer, key=idempotency_key, fingerprint=fingerprint, error=exc)
    except IntegrityError:
        # The same key committed a moment ago by a parallel request (the unique index made
        # us wait for it): answer as a retry would.
        replay = replay_now()
        if replay is None:
            raise
        return replay

    return _pay_and_confirm(order=order, lines=order_lines, taken=taken, token=context["payment_token"])


def order_reserve(
    *,
    buyer,
    lines: list[tuple[str, int]],
    idempotency_key: str,
    fingerprint: str = "",
    shop_slug: str | None = None,
    stream_id: int | None = None,
    coupon: str | None = None,
    now=None,
    venue_id: int | None = None,
    bundle_id: int | None = None,
) -> Order:
    """Step 1 of a buy alone: price and take ``lines`` and write the order as ``reserved``,
    without paying. What a process that dies mid-buy leaves behind; ``order_release`` (or
    the sweeper, ``orders_release_expired``) gives it back. Raises the buy's refusals."""
    codes = [code for code, _ in lines]
    now = now or timezone.now()
    context = buy_context(
        buyer_id=buyer.pk,
        key=idempotency_key,
        codes=codes,
        shop_slug=shop_slug,
        stream_id=stream_id,
        venue_id=venue_id,
        now=now,
    )
    quote = _checkout_quote(
        buyer=buyer,
        context=context,
        lines=lines,
        shop_slug=shop_slug,
        stream_id=stream_id,
        coupon=coupon,
        now=now,
        venue_id=venue_id,
        bundle_id=bundle_id,
    )
    quote_refusals(quote)
    order, _, _ = _reserve(
        buyer=buyer, quote=quote, key=idempotency_key, fingerprint=fingerprint, context=context, now=now
    )
    return order


def _replay(*, buyer, key: str, fingerprint: str, context: dict) -> BuyOutcome | None:
    if context["prior_order_id"] is not None:
        if context["prior_order_fingerprint"] != fingerprint:
            return _error_outcome(IdempotencyKeyReused())
        if context["prior_order_status"] == Order.Status.RESERVED:
            return _error_outcome(IdempotencyKeyInFlight())
        order = Order.objects.get(pk=context["prior_order_id"])
        return BuyOutcome(*_order_answer(order), order=order, replayed=True)
    if context["prior_record_id"] is not None:
        record = IdempotencyRecord.objects.get(pk=context["prior_record_id"])
        if record.request_fingerprint != fingerprint:
            return _error_outcome(IdempotencyKeyReused())
        return BuyOutcome(record.status_code, record.body, replayed=True)
    return None


def _order_answer(order: Order, lines=None) -> tuple[int, dict]:
    """The answer an order's buy got, and gets again on a replay."""
    if order.status in (Order.Status.DECLINED, Order.Status.EXPIRED):
        error = PaymentDeclined() if order.status == Order.Status.DECLINED else ReservationExpired()
        return error.status, {"code": error.code, "message": error.message, "order": order.pk}
    return 201, order_body(order, lines)


def _error_outcome(error: DomainError) -> BuyOutcome:
    return BuyOutcome(error.status, {"code": error.code, "message": error.message, **error.details})


def _remember_failure(*, buyer, key: str, fingerprint: str, error: DomainError) -> BuyOutcome:
    outcome = _error_outcome(error)
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.create(
                user=buyer, key=key, request_fingerprint=fingerprint, status_code=outcome.status, body=outcome.body
            )
    except IntegrityError:
        pass  # a parallel request with the same key stored the same answer
    return outcome


def _checkout_quote(
    *,
    buyer,
    context: dict,
    lines: list[tuple[str, int]],
    shop_slug,
    stream_id,
    coupon=None,
    now=None,
    venue_id=None,
    bundle_id=None,
) -> Quote:
    """The lines priced as ``POST /api/v1/quotes/`` prices them (apps.pricing), from the
    SKU rows ``buy_context`` read: raises the quote's first refusals (duplicate SKU, unknown
    venue, unknown stream, unknown or ambiguous SKU, several shops, a venue of another shop,
    the bundle's refusals, no stock row), in the quote's order; the buyer's checkout
    details are checked next, then ``quote_refusals``."""
    refuse_duplicates(lines)
    if venue_id is not None and context["venue"] is None:
        raise VenueNotFound()
    if stream_id is not None and context["stream_shop_id"] is None:
        shop_resolver("stream")(stream_id)  # raises the stream's not-found answer
    rows = resolve_lines(lines=lines, rows=context["skus"])
    where = Context(
        stream=stream_id,
        shop=shop_slug,
        coupon=coupon,
        venue=venue_id,
        bundle=bundle_id,
        now=now,
        buyer_flags=context.get("buyer_flags"),
    )
    refuse_venue(rows=rows, venue_shop_id=context["venue"]["shop_id"] if context["venue"] else None, context=where)
    return quote_rows(buyer=buyer, lines=lines, rows=rows, context=where)


def _reserve(
    *, buyer, quote: Quote, key: str, fingerprint: str, context: dict, now, pairs=None
) -> tuple[Order, list[OrderLine], list[tuple[Claim, tuple]]]:
    """Take every claim of ``quote``'s lines (units, per-buyer allowances) and insert the
    order (in ``context``'s stream, with its default payment method and a copy of its
    address: the buyer's as ``buy_context`` read them) and its lines: all or nothing.
    Returns the order, its lines and each units claim with the row it returned (for the
    counter events of the confirm). Raises the first refused
    claim's answer (InsufficientStock or DealNotOpen naming the SKU, BuyerLimitExceeded)
    or IntegrityError (the key taken meanwhile), with nothing written. ``now``: the moment
    the quote valued its offers at (a running-time coupon); ``pairs``: ``quote.line_claims``
    when the caller has them."""
    pairs = pairs if pairs is not None else quote.line_claims(buyer_id=buyer.pk)
    claims = quote.claims(buyer_id=buyer.pk, pairs=pairs)
    first, address, venue = quote.skus[0], context["address"], context.get("venue")
    if venue is not None:  # a pickup: nothing is shipped, so no address is copied
        address = None
        pickup = Location(pk=venue["id"], shop_id=venue["shop_id"], name=venue["name"], address=venue["address"])
        pickup._state.adding = False
    # creatorcommerce.sql: the ORM's INSERT without its per-call cost (hot path).
    order = Order(
        buyer=buyer,
        shop_id=first["shop_id"],
        stream_id=context["stream_id"],
        total=quote.total,
        currency=quote.currency,
        shipping_fee=quote.shipping.fee,
        shipping_adjustments=[a.body() for a in quote.shipping.adjustments],
        idempotency_key=key,
        request_fingerprint=fingerprint,
        payment_method_id=context["payment_method_id"],
        redemptions=redemption_keys(claims),
        fulfilment=Order.Fulfilment.PICKUP if venue is not None else Order.Fulfilment.DELIVERY,
        pickup_location=pickup if venue is not None else None,
        # The copy travels in the order's own INSERT (inside the one reserve statement on
        # PostgreSQL): no extra round trip.
        **{f"shipping_{name}": value or "" for name, value in (address or {}).items()},
    )
    order_lines = [
        OrderLine(
            order=order,
            sku_id=row["id"],
            # An early sale's units come off the deal's shelf, not the default location's.
            stock_level_id=(
                pl.unit_source.stock_row if pl.unit_source and pl.unit_source.stock_row else row["level_id"]
            ),
            sku_code=pl.line.code,
            title=row["title"],
            quantity=pl.line.quantity,
            unit_price=pl.line.unit_price,
            adjustments=[a.body() for a in pl.adjustments],
            total=pl.total,
            unit_source=unit_source_key(units),
            allowance_key=allowance.target if allowance is not None else "",
        )
        for pl, row, (units, allowance) in zip(quote.lines, quote.skus, pairs, strict=True)
    ]
    if connection.vendor == "postgresql":
        results = _reserve_in_one_statement(buyer=buyer, claims=claims, order=order, lines=order_lines, now=now)
    else:
        with transaction.atomic():
            results = claims_take(claims=claims, buyer_id=buyer.pk, now=now)
            insert([order])
            for line in order_lines:
                line.order_id = order.pk
            insert(order_lines)
    taken = [(claim, row) for claim, row in zip(claims, results, strict=True) if claim.kind == "units"]
    return order, order_lines, taken


def _reserve_in_one_statement(*, buyer, claims: list[Claim], order: Order, lines: list[OrderLine], now) -> list:
    """``_reserve`` on PostgreSQL: one data-modifying CTE instead of a round trip per claim
    and row. The claims are chained parts, taken in order, each only if the one before it
    was (apps.pricing.claims.claims_chain); the order is inserted only if the last was, and
    the lines only with the order. With one claim the statement is its own transaction;
    with several, a later claim may refuse after earlier ones took, so the statement runs
    in a transaction that is rolled back then (BEGIN and COMMIT: three round trips). A
    coupon's counters never refuse after a write (``claims_atomic``): a one-line buy with a
    coupon is still one statement."""
    sql, params = reserve_statement(buyer_id=buyer.pk, claims=claims, order=order, lines=lines, now=now)
    with transaction.atomic() if claims_atomic(claims) else nullcontext():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        results = claims_results(claims=claims, values=row, now=now)  # raises (rolls back) on a refusal
    order_id, line_ids = row[-2], row[-1]
    set_keys([order], [order_id])
    for line in lines:
        line.order_id = order_id
    set_keys(lines, line_ids)
    return results


def reserve_statement(
    *, buyer_id: int, claims: list[Claim], order: Order, lines: list[OrderLine], now
) -> tuple[str, list]:
    """``_reserve_in_one_statement``'s statement (PostgreSQL) and its parameters. It selects
    each claim's columns (``claims_chain``; NULL for a claim that took nothing), the new
    order's id (NULL unless every claim took) and its lines' ids, in order."""
    parts, params, last, columns = claims_chain(claims=claims, buyer_id=buyer_id, now=now)
    o, ln = names(Order), names(OrderLine)
    order_sql, order_params = insert_select([order], source=last)
    line_sql, line_params = insert_select(lines, source="placed", exprs={"order_id": f"placed.{o.id}"})
    parts += [f"placed AS ({order_sql})", f"lined AS ({line_sql})"]
    params += [*order_params, *line_params]
    joins = " ".join(f"LEFT JOIN claim{i} ON true" for i in range(len(claims)))
    # Every part is SQL from this module and the services it calls, identifiers from the
    # models' meta; values are parameters.
    sql = (
        f"WITH {', '.join(parts)} SELECT {', '.join(columns)}, placed.{o.id}, "  # noqa: S608
        f"(SELECT array_agg(lined.{ln.id} ORDER BY lined.{ln.id}) FROM lined) "
        f"FROM (SELECT 1) AS one {joins} LEFT JOIN placed ON true"
    )
    return sql, params


def confirm_statement(*, order_id: int, authorization: str, receipt: str, now) -> tuple[str, list]:
    """The confirm's conditional UPDATE (SQL and parameters): the order becomes paid, with
    its authorisation and signed receipt, only if it is still reserved; it returns the
    order's id, or no row when the sweeper released it first."""
    o = names(Order)
    # Identifiers from the model's meta; values (the statuses too) are parameters.
    return (
        f"UPDATE {o.table} SET {o.status} = %s, {o.payment_status} = %s, {o.payment_reference} = %s, "  # noqa: S608
        f"{o.receipt} = %s, {o.paid_at} = %s WHERE {o.id} = %s AND {o.status} = %s RETURNING {o.id}",
        [
            Order.Status.PAID,
            Order.PaymentStatus.AUTHORIZED,
            authorization,
            receipt,
            connection.ops.adapt_datetimefield_value(now),
            order_id,
            Order.Status.RESERVED,
        ],
    )


def _transition_statement(*, order_id: int, from_status: str, values: dict) -> tuple[str, list]:
    """``UPDATE order SET <values> WHERE id = <order_id> AND status = <from_status>
    RETURNING id``: SQL and parameters (for ``emit_many_when``)."""
    o = names(Order)
    assignments = ", ".join(f"{getattr(o, name)} = %s" for name in values)
    params = [Order._meta.get_field(name).get_db_prep_save(value, connection) for name, value in values.items()]
    # Identifiers from the model's meta; values (the statuses too) are parameters.
    return (
        f"UPDATE {o.table} SET {assignments} WHERE {o.id} = %s AND {o.status} = %s RETURNING {o.id}",  # noqa: S608
        [*params, order_id, from_status],
    )


def _line_ref(line: OrderLine, shop_id: int) -> LineRef:
    return LineRef(line.sku_id, line.sku_code, shop_id)


def _pay_and_confirm(
    *, order: Order, lines: list[OrderLine], taken: list[tuple[Claim, tuple]], token: str
) -> BuyOutcome:
    """Authorise (no transaction open), sign, then confirm. ``stock.changed`` (``deal.changed``
    for a deal's units) is emitted here, with the count and version the reservation
    produced, together with ``order.placed``: viewers see completed sales, and a declined
    card never blips the counter."""
    gateway = get_gateway()
    try:
        authorization = gateway.authorize(
            token=token, amount=order.total, currency=order.currency, reference=payment_reference(order)
        )
    except PaymentDeclined:
        order_release(order_id=order.pk, to_status=Order.Status.DECLINED)
        order.status = Order.Status.DECLINED
        return BuyOutcome(*_order_answer(order), order=order)
    except Exception as exc:  # the gateway did not answer
        log.warning("payment gateway failed for order %s: %s", order.pk, exc)
        if settings.NODE_ROLE == "edge" and not isinstance(exc, InvalidPaymentToken):
            return _accept_offline_or_refuse(order=order, lines=lines, taken=taken)
        order_release(order_id=order.pk, to_status=Order.Status.FAILED)  # give everything back
        return _error_outcome(GatewayUnavailable())

    receipt = receipt_sign(payload=_receipt_payload(order, lines))
    now = timezone.now()
    groups = _placed_groups(order)
    # Mark the order paid - only if it is still reserved: the sweeper may have released it -
    # and record its events, as one unit (one statement on PostgreSQL).
    confirmed = emit_many_when(
        *confirm_statement(order_id=order.pk, authorization=authorization, receipt=receipt, now=now),
        [
            *(
                event
                for claim, row in taken
                if (event := taken_event(claim=claim, row=row, line=_line_ref(lines[claim.line], order.shop_id)))
            ),
            ("order.placed", _order_placed_payload(order, lines), groups),
        ],
    )
    if confirmed is None:  # the sweeper released it first: nothing may be charged
        gateway.void(authorization_id=authorization)
        order.status = Order.Status.EXPIRED
        return BuyOutcome(*_order_answer(order), order=order)
    order.status, order.receipt, order.paid_at = Order.Status.PAID, receipt, now
    order.payment_status, order.payment_reference = Order.PaymentStatus.AUTHORIZED, authorization
    return BuyOutcome(*_order_answer(order, lines), order=order)


def _placed_groups(order: Order) -> list[str]:
    """The groups docs/events.md names for order.placed: the shop's, and the stream's for a
    buy in a stream (its purchase ticker)."""
    return [f"shop.{order.shop_id}"] + ([f"stream.{order.stream_id}"] if order.stream_id else [])


# -- offline selling (docs/buying.md, "Offline selling") -------------------------------------


def _accept_offline_or_refuse(*, order: Order, lines: list[OrderLine], taken: list[tuple[Claim, tuple]]) -> BuyOutcome:
    """An edge node whose gateway did not answer: accept ``order`` for later capture if its
    total is within ``OFFLINE_FLOOR_LIMIT``, else give everything back as a gateway failure
    does and refuse with ``offline_over_floor_limit``.

    Accepting is the confirm with another outcome, and as one unit (one statement on
    PostgreSQL): the order becomes ``accepted_offline`` (payment ``pending``, the receipt
    signed by this node's key, the first capture try due after the backoff), the lines'
    counter events are emitted as for a paid buy (the units stay sold), and
    ``order.accepted_offline``; ``order.placed`` waits for the payment
    (``order_capture_offline``)."""
    limit = Decimal(str(settings.OFFLINE_FLOOR_LIMIT))
    if order.total > limit or limit <= 0:
        order_release(order_id=order.pk, to_status=Order.Status.FAILED)
        return _error_outcome(OfflineOverFloorLimit(limit=limit, currency=order.currency))
    receipt = receipt_sign(payload=_receipt_payload(order, lines, offline=True))
    now = timezone.now()
    next_at = now + timedelta(seconds=_capture_backoff(0))
    accepted = emit_many_when(
        *_transition_statement(
            order_id=order.pk,
            from_status=Order.Status.RESERVED,
            values={
                "status": Order.Status.ACCEPTED_OFFLINE,
                "payment_status": Order.PaymentStatus.PENDING,
                "receipt": receipt,
                "offline_accepted_at": now,
                "capture_next_at": next_at,
            },
        ),
        [
            *(
                event
                for claim, row in taken
                if (event := taken_event(claim=claim, row=row, line=_line_ref(lines[claim.line], order.shop_id)))
            ),
            ("order.accepted_offline", _order_placed_payload(order, lines), [f"shop.{order.shop_id}"]),
        ],
    )
    if accepted is None:  # the sweeper released it first: nothing was sold
        order.status = Order.Status.EXPIRED
        return BuyOutcome(*_order_answer(order), order=order)
    order.status, order.payment_status = Order.Status.ACCEPTED_OFFLINE, Order.PaymentStatus.PENDING
    order.receipt = receipt
    order.offline_accepted_at, order.capture_next_at = now, next_at
    return BuyOutcome(*_order_answer(order, lines), order=order)


def _capture_backoff(attempts: int) -> int:
    """Seconds before the next capture try after ``attempts`` failed ones."""
    base, cap = settings.OFFLINE_CAPTURE_BACKOFF_SECONDS, settings.OFFLINE_CAPTURE_MAX_BACKOFF_SECONDS
    return min(base * 2 ** min(attempts, 20), cap)


def order_capture_offline(*, order_id: int, now=None) -> str:
    """Take the payment of an ``accepted_offline`` order now that the gateway may answer:
    authorise it under the order's own reference (``payment_reference``: a retry after a
    lost answer, or a second run at the same moment, finds the same hold instead of adding
    one), then confirm it as a paid buy would be - ``paid``, ``authorized``, and
    ``order.placed`` in one unit, only if it is still ``accepted_offline`` - so the
    ``capture_payment`` handler captures it, once, as every order's.

    Answers ``"paid"``; ``"declined"`` when the card was refused (``order_capture_declined``:
    the order is flagged, the units stay sold); ``"retry"`` when the gateway still does not
    answer (the next try is backed off); ``"skipped"`` when the order is not accepted
    offline (any more). Network I/O outside any transaction; safe to run twice at once."""
    now = now or timezone.now()
    waiting = {"pk": order_id, "status": Order.Status.ACCEPTED_OFFLINE}
    order = Order.objects.select_related("buyer", "shop", "payment_method").filter(**waiting).first()
    if order is None:
        return "skipped"
    gateway = get_gateway()
    try:
        if order.payment_method is None:  # the saved card was removed: nothing to charge
            raise PaymentDeclined("The saved payment method was removed before the payment was taken.")
        authorization = gateway.authorize(
            token=order.payment_method.token,
            amount=order.total,
            currency=order.currency,
            reference=payment_reference(order),
        )
    except (PaymentDeclined, InvalidPaymentToken) as exc:
        order_capture_declined(order=order, reason=exc.message)
        return "declined"
    except Exception as exc:  # still unreachable (or the answer was lost): try again later
        log.info("offline order %s not authorised yet: %s", order_id, exc)
        Order.objects.filter(**waiting).update(
            capture_attempts=F("capture_attempts") + 1,
            capture_next_at=now + timedelta(seconds=_capture_backoff(order.capture_attempts + 1)),
            capture_error=str(exc)[:200],
        )
        return "retry"
    lines = list(order.lines.all())
    paid = emit_many_when(
        *_transition_statement(
            order_id=order.pk,
            from_status=Order.Status.ACCEPTED_OFFLINE,
            values={
                "status": Order.Status.PAID,
                "payment_status": Order.PaymentStatus.AUTHORIZED,
                "payment_reference": authorization,
                "paid_at": now,
                "capture_next_at": None,
                "capture_error": "",
            },
        ),
        [("order.placed", _order_placed_payload(order, lines), _placed_groups(order))],
    )
    if paid is not None:
        return "paid"
    # Another run confirmed it first, with this same hold (the reference is the order's).
    current = Order.objects.filter(pk=order_id).values_list("status", "payment_reference").first()
    if current is not None and current[0] != Order.Status.PAID:
        with suppress(HoldNotAvailable):  # not paid after all (closed meanwhile): nothing may stay held
            gateway.void(authorization_id=authorization)
    return "skipped"


def order_capture_declined(*, order: Order, reason: str) -> bool:
    """Flag an ``accepted_offline`` order whose payment the gateway refused later: it
    becomes ``capture_declined`` (payment ``declined``), ``order.capture_declined`` goes to
    the shop, and the audit log records it. The units stay sold: the creator decides
    (docs/buying.md, "Offline selling"). False when the order was not accepted offline
    (any more): a parallel run flagged it."""
    with transaction.atomic():
        flagged = Order.objects.filter(pk=order.pk, status=Order.Status.ACCEPTED_OFFLINE).update(
            status=Order.Status.CAPTURE_DECLINED,
            payment_status=Order.PaymentStatus.DECLINED,
            capture_next_at=None,
            capture_error=reason[:200],
        )
        if not flagged:
            return False
        payload = {
            "order": order.pk,
            "shop": order.shop_id,
            "buyer": order.buyer_id,
            "total": order.total,
            "currency": order.currency,
            "reason": reason,
        }
        emit("order.capture_declined", payload, groups=[f"shop.{order.shop_id}"])
        audit_record(
            actor=None,
            action="order.capture_declined",
            obj=order,
            shop=order.shop,
            reason=reason,
            details={
                "amount": str(order.total),
                "currency": order.currency,
                "accepted_offline_at": order.offline_accepted_at.isoformat() if order.offline_accepted_at else None,
                "node": settings.NODE_ID,
                "units_kept_sold": True,
            },
        )
    return True


def orders_capture_offline(*, now=None, batch: int = 100) -> dict[str, int]:
    """Try the payment of the accepted-offline orders whose next try is due (beat, every
    15 s), oldest due first. The first order the gateway still does not answer for ends the
    run: the rest wait for the next tick instead of each timing out now."""
    now = now or timezone.now()
    due = (
        Order.objects.filter(status=Order.Status.ACCEPTED_OFFLINE, capture_next_at__lte=now)
        .order_by("capture_next_at", "pk")
        .values_list("pk", flat=True)
    )
    counts = {"paid": 0, "declined": 0, "retry": 0, "skipped": 0}
    for order_id in list(due[:batch]):
        outcome = order_capture_offline(order_id=order_id, now=now)
        counts[outcome] += 1
        if outcome == "retry":
            break
    return counts


def payment_reference(order: Order) -> str:
    """The gateway's idempotency reference of a buy: the buyer and their Idempotency-Key,
    not the order id, so that a retry after a gateway timeout (which frees the key and makes
    a new order) finds the hold the first attempt may have placed instead of adding one."""
    digest = hashlib.sha256(f"{order.buyer_id}:{order.idempotency_key}".encode()).hexdigest()[:32]
    return f"buy-{order.buyer_id}-{digest}"


def _order_placed_payload(order: Order, lines: list[OrderLine]) -> dict:
    """``order.placed``. ``buyer_name`` is only what the buyer chose to show (their display
    name) or null; stream pages show it in the purchase ticker."""
    return {
        "order": order.pk,
        "shop": order.shop_id,
        "stream": order.stream_id,
        "buyer": order.buyer_id,
        "buyer_name": order.buyer.display_name or None,
        "subtotal": sum((ln.subtotal for ln in lines), Decimal("0.00")),
        "total": order.total,
        "currency": order.currency,
        "lines": [
            {
                "sku": ln.sku_code,
                "sku_id": ln.sku_id,
                "quantity": ln.quantity,
                "unit_price": ln.unit_price,
                "adjustments": ln.adjustments,
                "total": ln.total,
            }
            for ln in lines
        ],
    }


def _receipt_payload(order: Order, lines: list[OrderLine], *, offline: bool = False) -> dict:
    """The receipt's claims (docs/receipts.md); ``offline``: accepted by this (edge) node
    while the gateway could not be reached, the payment taken later."""
    return {
        "order": order.pk,
        "node": settings.NODE_ID,
        "seq": order.pk,
        "items": [line_body(ln) for ln in lines],
        **({"pickup": pickup_body(order)} if order.fulfilment == Order.Fulfilment.PICKUP else {}),
        # Only when the shop charged for shipping: receipts of shops without a fee keep their shape.
        **({"shipping": shipping_body(order)} if order.shipping_fee else {}),
        "total": str(order.total),
        "currency": order.currency,
        "buyer": order.buyer_id,
        **({"offline": True} if offline else {}),
        "iat": int(time.time()),
    }


def _lines_give_back(*, order: Order, lines: list[OrderLine], allowances: bool) -> None:
    """Give the lines' units back where they came from (a deal's to the deal while it is
    open, else to the location the deal drew them from; others to their stock row) and,
    with ``allowances``, the per-buyer allowances they counted against; emit the counter
    events. Rows are locked in the claims' global order (apps.pricing.claims.units_give_back),
    so a release or refund cannot deadlock with a buy or another release. Precondition:
    inside ``transaction.atomic()``."""
    give_backs = [
        GiveBack(line.unit_source, line.stock_level_id, line.quantity, _line_ref(line, order.shop_id)) for line in lines
    ]
    for event_type, payload, groups in units_give_back(give_backs):
        emit(event_type, payload, groups=groups)
    if allowances:
        for line in sorted(lines, key=lambda ln: ln.allowance_key):
            allowance_give_back(buyer_id=order.buyer_id, key=line.allowance_key, quantity=line.quantity)


def order_release(*, order_id: int, to_status: str) -> bool:
    """Give a reserved order's redemptions (a coupon, a geo offer's cap), units and
    per-buyer allowances back and close it as
    ``to_status`` (declined, expired or failed). Returns False if it was no longer
    reserved (confirmed or released meanwhile). Opens its own transaction."""
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(pk=order_id, status=Order.Status.RESERVED).first()
        if order is None:
            return False
        order.status = to_status
        order.save(update_fields=["status"])
        # Counters first (a coupon's use, a cap): the claims' global order (apps.pricing.claims).
        for event_type, payload, groups in counters_give_back(order.redemptions):
            emit(event_type, payload, groups=groups)
        _lines_give_back(order=order, lines=list(order.lines.all()), allowances=True)
        emit(f"order.{to_status}", {"order": order.pk, "shop": order.shop_id}, groups=[f"shop.{order.shop_id}"])
    return True


def orders_release_expired(*, now=None, ttl_seconds: int | None = None, batch: int = 500) -> int:
    """Release reservations older than the TTL (their process died mid-buy)."""
    now = now or timezone.now()
    ttl = settings.ORDER_RESERVATION_TTL_SECONDS if ttl_seconds is None else ttl_seconds
    cutoff = now - timedelta(seconds=ttl)
    stale = Order.objects.filter(status=Order.Status.RESERVED, created_at__lt=cutoff).values_list("pk", flat=True)
    return sum(order_release(order_id=pk, to_status=Order.Status.EXPIRED) for pk in list(stale[:batch]))


def order_capture(*, order_id: int) -> bool:
    """Capture an authorised payment. Safe to repeat: the gateway captures an authorisation
    once, and only an ``authorized`` order moves to ``captured``. Network I/O happens
    outside any transaction."""
    paid = {"pk": order_id, "status": Order.Status.PAID, "payment_status": Order.PaymentStatus.AUTHORIZED}
    order = Order.objects.filter(**paid).first()
    if order is None:
        return False
    try:
        capture = get_gateway().capture(authorization_id=order.payment_reference, amount=order.total)
    except HoldNotAvailable:  # a refund voided the hold after our read: nothing to take
        log.info("order %s was not captured: its hold was voided by a refund", order_id)
        return False
    with transaction.atomic():
        captured = Order.objects.filter(**paid).update(
            payment_status=Order.PaymentStatus.CAPTURED, capture_reference=capture
        )
        if captured:
            # Said on the spine so an edge's cloud copy of the order follows (docs/edge.md).
            emit("order.captured", {"order": order_id, "shop": order.shop_id}, groups=[f"shop.{order.shop_id}"])
    return bool(captured)


def order_can_refund(*, order: Order, actor) -> bool:
    """Staff may refund any order, a creator their own shop's."""
    if not getattr(actor, "is_active", False):
        return False
    return bool(actor.is_staff or (actor.is_creator and order.shop.owner_id == actor.pk))


def order_refund(*, order: Order, actor, restock: bool, reason: str) -> Order:
    """Refund a paid order on behalf of ``actor`` (staff, or the creator of its shop).

    The gateway refunds the capture (or voids an authorisation not captured yet), outside
    any transaction; then, in one transaction, the order becomes ``refunded``, with
    ``restock`` its units go back where they came from (a flash deal's to the deal while
    it is open, else to its location; others to their stock row; as a released order's do,
    emitting ``stock.changed`` or ``deal.changed``), ``order.refunded`` is emitted and an
    audit entry records who, why and what. Per-buyer allowances are not given back: the
    units were bought.

    An order accepted offline whose later payment was declined (``capture_declined``) is
    closed the same way, without the gateway (nothing was charged): the creator's choice
    for it (docs/buying.md, "Offline selling").

    Raises RefundNotAllowed, RefundReasonRequired, OrderNotPaid, OrderCapturePending (accepted
    offline, not paid yet), OrderAlreadyRefunded, or
    RefundFailed when the gateway does not confirm (then nothing is written and the order
    stays paid). Safe to retry: the gateway reference is the order's, so a retry after a
    lost answer refunds once. Precondition: no transaction open.
    """
    reason = (reason or "").strip()
    order = Order.objects.select_related("shop").get(pk=order.pk)
    if not order_can_refund(order=order, actor=actor):
        raise RefundNotAllowed()
    if not reason:
        raise RefundReasonRequired()
    _refundable_or_raise(order)

    gateway = get_gateway()
    try:
        if order.status == Order.Status.CAPTURE_DECLINED:  # nothing was charged: nothing to give back
            refund_reference, payment_status = "", Order.PaymentStatus.DECLINED
        elif order.payment_status == Order.PaymentStatus.CAPTURED:
            refund_reference = gateway.refund(
                capture_id=order.capture_reference, amount=order.total, reference=f"refund-order-{order.pk}"
            )
            payment_status = Order.PaymentStatus.REFUNDED
        else:  # authorised, not captured yet: release the hold instead
            gateway.void(authorization_id=order.payment_reference)
            refund_reference, payment_status = order.payment_reference, Order.PaymentStatus.VOIDED
    except HoldNotAvailable as exc:  # captured since our read: the next try refunds the capture
        log.info("refund of order %s met its capture: %s", order.pk, exc)
        raise RefundFailed() from exc
    except Exception as exc:
        log.warning("refund of order %s failed at the gateway: %s", order.pk, exc)
        raise RefundFailed() from exc

    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        _refundable_or_raise(locked)  # a parallel refund won: the gateway refunded once
        if locked.payment_status != order.payment_status:
            # Captured after our read, though we voided: a gateway that let both happen
            # needs a refund, not a record that says voided. The staff member tries again.
            log.warning("order %s changed payment state during its refund; not recorded", order.pk)
            raise RefundFailed()
        locked.status, locked.payment_status = Order.Status.REFUNDED, payment_status
        locked.refund_reference, locked.refunded_at = refund_reference, timezone.now()
        locked.save(update_fields=["status", "payment_status", "refund_reference", "refunded_at"])
        lines = list(locked.lines.order_by("pk"))
        if restock:
            _lines_give_back(order=locked, lines=lines, allowances=False)
        emit(
            "order.refunded",
            {
                "order": locked.pk,
                "shop": locked.shop_id,
                "total": locked.total,
                "currency": locked.currency,
                "restocked": restock,
                "lines": [{"sku": ln.sku_code, "sku_id": ln.sku_id, "quantity": ln.quantity} for ln in lines],
            },
            # docs/events.md: the shop's group, and the control room of the stream it was
            # bought in (its sales no longer count it).
            groups=[f"shop.{locked.shop_id}"] + ([f"control.{locked.stream_id}"] if locked.stream_id else []),
        )
        audit_record(
            actor=actor,
            action="order.refunded",
            obj=locked,
            shop=locked.shop,
            reason=reason,
            details={
                "restock": restock,
                "amount": str(locked.total),
                "currency": locked.currency,
                "refund_reference": refund_reference,
                "payment_status": payment_status,
                "lines": [{"sku": ln.sku_code, "quantity": ln.quantity} for ln in lines],
            },
        )
    return locked


def _refundable_or_raise(order: Order) -> None:
    if order.status == Order.Status.REFUNDED:
        raise OrderAlreadyRefunded()
    if order.status == Order.Status.ACCEPTED_OFFLINE:
        raise OrderCapturePending()
    if order.status not in REFUNDABLE:
        raise OrderNotPaid()


# What a refund takes: a paid order, or one accepted offline whose payment was declined later.
REFUNDABLE = (Order.Status.PAID, Order.Status.CAPTURE_DECLINED)


def idempotency_records_prune(*, older_than_hours: int | None = None) -> int:
    hours = settings.IDEMPOTENCY_KEY_TTL_HOURS if older_than_hours is None else older_than_hours
    cutoff = timezone.now() - timedelta(hours=max(hours, 24))  # the contract promises 24 h
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


# -- checkout details ------------------------------------------------------------------------


def payment_method_add(*, user, token: str) -> PaymentMethod:
    """Save a gateway token as the buyer's default payment method. The gateway is asked
    first, outside the transaction."""
    card = get_gateway().validate_token(token)
    with transaction.atomic():
        PaymentMethod.objects.filter(user=user, is_default=True).update(is_default=False)
        method = PaymentMethod.objects.create(
            user=user, token=token, brand=card.brand, last4=card.last4, is_default=True
        )
        emit("payment_method.added", {"user": user.pk, "payment_method": method.pk})
    return method


@transaction.atomic
def address_set(*, user, **fields) -> Address:
    address, _ = Address.objects.update_or_create(user=user, defaults=fields)
    emit("address.updated", {"user": user.pk})
    return address
