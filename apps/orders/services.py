"""The buy path, checkout details, and what happens to orders afterwards.

A buy is three short steps, none of which holds a transaction across network I/O:

1. **reserve** (all or nothing; one statement on PostgreSQL): take the stock with a
   conditional UPDATE, count the units against the buyer's limit, insert the order under
   the buyer's Idempotency-Key;
2. **authorize** the payment with the gateway (no transaction open), and sign the receipt;
3. **confirm** (all or nothing; one statement on PostgreSQL): mark the order paid - only if
   it is still reserved - and emit ``stock.changed`` and ``order.placed``; capture follows
   from the latter.

A decline gives the stock back at once; a process that dies between 1 and 3 leaves a
reservation that ``orders_release_expired`` gives back after the TTL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.catalog.exceptions import AmbiguousSku, BuyerLimitExceeded, InsufficientStock, SkuNotFound
from apps.catalog.services import (
    StockCount,
    allowance_return,
    allowance_take,
    allowance_take_statement,
    stock_changed_event,
    stock_return,
    stock_take,
    stock_take_statement,
)
from apps.pricing.selectors import MAX_ORDER_TOTAL
from apps.streams.exceptions import StreamNotFound
from apps.streams.models import FlashDeal, Stream
from apps.streams.services import (
    DealCount,
    deal_changed_event,
    deal_return,
    deal_take,
    deal_take_refused,
    deal_take_statement,
    stream_groups,
)
from creatorcommerce.errors import DomainError
from creatorcommerce.signing.services import receipt_sign
from creatorcommerce.spine.events import emit, emit_many_when
from creatorcommerce.sql import insert, insert_select, set_keys

from .exceptions import (
    AmountTooLarge,
    CheckoutIncomplete,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    OrderAlreadyRefunded,
    OrderNotPaid,
    RefundFailed,
    RefundNotAllowed,
    RefundReasonRequired,
    ReservationExpired,
)
from .models import Address, IdempotencyRecord, Order, OrderLine, PaymentMethod
from .payments import GatewayUnavailable, HoldNotAvailable, PaymentDeclined, get_gateway
from .selectors import buy_context, line_body, order_body

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
    sku_code: str,
    quantity: int,
    idempotency_key: str,
    fingerprint: str,
    shop_slug: str | None = None,
    stream_id: int | None = None,
) -> BuyOutcome:
    """One-tap buy of ``quantity`` units of ``sku_code`` by ``buyer``.

    With ``shop_slug`` or ``stream_id``, the SKU is looked up in that shop (the stream's),
    so another shop using the same code changes nothing (docs/buying.md, "Naming the
    shop"); with neither, a code several shops use answers ``ambiguous_sku``. If a flash
    deal is open on the SKU in that stream, the deal's price, stock and per-buyer limit
    apply. The order keeps a copy of the buyer's address as it is now.

    Precondition: no transaction open (this function commits twice, and authorises the
    payment between the two). Never raises for business outcomes: sold out, over the limit,
    declined, an earlier answer under the same key... all come back as a BuyOutcome, and
    those that did not create an order are stored so that a retry gets the same answer.
    """
    context = buy_context(
        buyer_id=buyer.pk, key=idempotency_key, sku_code=sku_code, shop_slug=shop_slug, stream_id=stream_id
    )
    replay = _replay(buyer=buyer, key=idempotency_key, fingerprint=fingerprint, context=context)
    if replay is not None:
        return replay

    try:
        purchase = _purchase(context=context, quantity=quantity, stream_id=stream_id)
        if context["payment_method_id"] is None or not context["has_address"]:
            raise CheckoutIncomplete()
        order, line, count = _reserve(
            buyer=buyer,
            purchase=purchase,
            key=idempotency_key,
            fingerprint=fingerprint,
            payment_method_id=context["payment_method_id"],
            address=context["address"],
        )
    except CheckoutIncomplete as exc:
        # Not remembered: the buyer saves a card and an address and retries with the same
        # key, and that retry must buy (nothing was written the first time).
        return _error_outcome(exc)
    except DomainError as exc:  # sold out, over the limit, unknown SKU
        return _remember_failure(buyer=buyer, key=idempotency_key, fingerprint=fingerprint, error=exc)
    except IntegrityError:
        # The same key committed a moment ago by a parallel request (the unique index made
        # us wait for it): answer as a retry would.
        context = buy_context(
            buyer_id=buyer.pk, key=idempotency_key, sku_code=sku_code, shop_slug=shop_slug, stream_id=stream_id
        )
        replay = _replay(buyer=buyer, key=idempotency_key, fingerprint=fingerprint, context=context)
        if replay is None:
            raise
        return replay

    return _pay_and_confirm(order=order, lines=[(line, count)], token=context["payment_token"])


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


@dataclass(frozen=True)
class _Purchase:
    sku: dict
    quantity: int
    unit_price: Decimal
    stream_id: int | None = None
    deal_id: int | None = None
    limit: int | None = None  # per-buyer limit that applies, counted under ``scope``
    scope: str = ""


def _purchase(*, context: dict, quantity: int, stream_id: int | None) -> _Purchase:
    """What exactly is being bought: which SKU, at which price, out of which stock, under
    which per-buyer limit (the deal's if it has one, else the SKU's)."""
    skus = context["skus"]
    if stream_id is not None:
        if context.get("stream_id") == stream_id:  # the read already narrowed to its shop
            stream_shop_id = context["stream_shop_id"]
        else:  # a context read without the stream (not the buy path's way): look it up
            stream_shop_id = Stream.objects.filter(pk=stream_id).values_list("shop_id", flat=True).first()
        if stream_shop_id is None:
            raise StreamNotFound()
        skus = [s for s in skus if s["shop_id"] == stream_shop_id]
    if not skus:
        raise SkuNotFound()
    if len(skus) > 1:
        raise AmbiguousSku()
    sku = skus[0]
    if sku["level_id"] is None:
        raise InsufficientStock()
    if stream_id is not None:
        deal = (
            FlashDeal.objects.filter(
                stream_id=stream_id, sku_id=sku["id"], status=FlashDeal.Status.OPEN, closes_at__gt=timezone.now()
            )
            .values("id", "price", "per_buyer_limit")
            .first()
        )
        if deal is not None:
            if deal["per_buyer_limit"] is not None:
                limit, scope = deal["per_buyer_limit"], f"deal:{deal['id']}"
            else:
                limit, scope = sku["per_buyer_limit"], ""
            return _Purchase(sku, quantity, deal["price"], stream_id, deal["id"], limit, scope)
    return _Purchase(sku, quantity, sku["price"], stream_id, None, sku["per_buyer_limit"], "")




def _reserve(
    *, buyer, purchase: _Purchase, key: str, fingerprint: str, payment_method_id: int, address: dict | None = None
):
    """Take the units (stock or deal), count them against the buyer's limit, and insert the
    order (with its copy of ``address``, the buyer's as ``buy_context`` read it) and its
    line: all or nothing. Raises InsufficientStock, DealNotOpen,
    BuyerLimitExceeded or IntegrityError (the key taken meanwhile) with nothing written."""
    sku, quantity = purchase.sku, purchase.quantity
    if purchase.unit_price * quantity > MAX_ORDER_TOTAL:
        raise AmountTooLarge()
    limit, scope = purchase.limit, purchase.scope
    # creatorcommerce.sql: the ORM's INSERT without its per-call cost (hot path).
    order = Order(
        buyer=buyer,
        shop_id=sku["shop_id"],
        stream_id=purchase.stream_id,
        total=purchase.unit_price * quantity,
        currency=sku["currency"],
        idempotency_key=key,
        request_fingerprint=fingerprint,
        payment_method_id=payment_method_id,
        # The copy travels in the order's own INSERT (inside the one reserve statement on
        # PostgreSQL): no extra round trip.
        **{f"shipping_{name}": value or "" for name, value in (address or {}).items()},
    )
    line = OrderLine(
        order=order,
        sku_id=sku["id"],
        stock_level_id=sku["level_id"],
        deal_id=purchase.deal_id,
        sku_code=sku["code"],
        title=sku["display_title"],
        quantity=quantity,
        unit_price=purchase.unit_price,
        counts_against_limit=limit is not None,
        limit_scope=scope,
    )
    if limit is not None and quantity > limit:
        # Over the limit whatever the stock: the same answer on every database (PostgreSQL's
        # statement refused this before taking anything, SQLite only after the take).
        raise BuyerLimitExceeded(limit=limit)
    if connection.vendor == "postgresql":
        count = _reserve_in_one_statement(buyer=buyer, purchase=purchase, order=order, line=line)
        return order, line, count
    with transaction.atomic():
        if purchase.deal_id is not None:
            count = deal_take(deal_id=purchase.deal_id, quantity=quantity)
        else:
            count = stock_take(level_id=sku["level_id"], quantity=quantity)
        if limit is not None:
            allowance_take(buyer_id=buyer.pk, sku_id=sku["id"], quantity=quantity, limit=limit, scope=scope)
        insert([order])
        line.order_id = order.pk
        insert([line])
    return order, line, count


def _reserve_in_one_statement(*, buyer, purchase: _Purchase, order: Order, line: OrderLine):
    """``_reserve`` on PostgreSQL: one data-modifying CTE instead of five round trips (BEGIN,
    the take, two INSERTs, COMMIT). Every part after the take selects from it, so a refused
    take writes nothing. Without a per-buyer limit the statement is its own transaction;
    with one, the allowance may refuse after the take succeeded, so the statement runs in
    a transaction that is rolled back then (BEGIN and COMMIT: three round trips)."""
    sku, quantity = purchase.sku, purchase.quantity
    if purchase.deal_id is not None:
        now = timezone.now()
        take_sql, take_params = deal_take_statement(deal_id=purchase.deal_id, quantity=quantity, now=now)
    else:
        take_sql, take_params = stock_take_statement(level_id=sku["level_id"], quantity=quantity)
    parts, params, source = [f"taken AS ({take_sql})"], [*take_params], "taken"
    if purchase.limit is not None:
        allow_sql, allow_params = allowance_take_statement(
            buyer_id=buyer.pk,
            sku_id=sku["id"],
            quantity=quantity,
            limit=purchase.limit,
            scope=purchase.scope,
            after="taken",
        )
        parts.append(f"allowed AS ({allow_sql})")
        params += allow_params
        source = "taken CROSS JOIN allowed"
    order_sql, order_params = insert_select([order], source=source)
    line_sql, line_params = insert_select([line], source="placed", exprs={"order_id": "placed.id"})
    parts += [f"placed AS ({order_sql})", f"lined AS ({line_sql})"]
    params += [*order_params, *line_params]
    # Every part is SQL from this module and the services it calls; values are parameters.
    ctes = ", ".join(parts)
    sql = f"WITH {ctes} SELECT taken.available, taken.version, placed.id, lined.id FROM taken LEFT JOIN placed ON true LEFT JOIN lined ON true"  # noqa: E501, S608
    with transaction.atomic() if purchase.limit is not None else nullcontext():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is not None and row[2] is None:  # taken, but over the buyer's limit: undo the take
            raise BuyerLimitExceeded(limit=purchase.limit)
    if row is None:
        if purchase.deal_id is not None:
            deal_take_refused(deal_id=purchase.deal_id, now=now)
        raise InsufficientStock()
    available, version, order_id, line_id = row
    set_keys([order], [order_id])
    line.order_id = order_id
    set_keys([line], [line_id])
    if purchase.deal_id is not None:
        return DealCount(purchase.deal_id, available, version)
    return StockCount(sku["level_id"], available, version)


def _count_event(*, line: OrderLine, shop_id: int, count) -> tuple[str, dict, list]:
    """``deal.changed`` for units of a flash deal, ``stock.changed`` otherwise."""
    if isinstance(count, DealCount):
        return deal_changed_event(deal_id=count.deal_id, count=count)
    return stock_changed_event(sku_id=line.sku_id, sku_code=line.sku_code, shop_id=shop_id, level=count)


def _pay_and_confirm(*, order: Order, lines: list[tuple[OrderLine, StockCount]], token: str) -> BuyOutcome:
    """Authorise (no transaction open), sign, then confirm. ``stock.changed`` is emitted here,
    with the count and version the reservation produced, together with ``order.placed``:
    viewers see completed sales, and a declined card never blips the counter."""
    gateway = get_gateway()
    try:
        authorization = gateway.authorize(
            token=token, amount=order.total, currency=order.currency, reference=payment_reference(order)
        )
    except PaymentDeclined:
        order_release(order_id=order.pk, to_status=Order.Status.DECLINED)
        order.status = Order.Status.DECLINED
        return BuyOutcome(*_order_answer(order), order=order)
    except Exception as exc:  # the gateway did not answer: give everything back
        log.warning("payment gateway failed for order %s: %s", order.pk, exc)
        order_release(order_id=order.pk, to_status=Order.Status.FAILED)
        return _error_outcome(GatewayUnavailable())

    order_lines = [line for line, _ in lines]
    receipt = receipt_sign(payload=_receipt_payload(order, order_lines))
    now = timezone.now()
    groups = [f"shop.{order.shop_id}"] + (stream_groups(order.stream_id) if order.stream_id else [])
    # Mark the order paid - only if it is still reserved: the sweeper may have released it -
    # and record its events, as one unit (one statement on PostgreSQL).
    confirmed = emit_many_when(
        "UPDATE orders_order SET status = %s, payment_status = %s, payment_reference = %s, receipt = %s, "
        "paid_at = %s WHERE id = %s AND status = %s RETURNING id",
        [
            Order.Status.PAID,
            Order.PaymentStatus.AUTHORIZED,
            authorization,
            receipt,
            connection.ops.adapt_datetimefield_value(now),
            order.pk,
            Order.Status.RESERVED,
        ],
        [
            *(_count_event(line=ln, shop_id=order.shop_id, count=count) for ln, count in lines),
            ("order.placed", _order_placed_payload(order, order_lines), groups),
        ],
    )
    if confirmed is None:  # the sweeper released it first: nothing may be charged
        gateway.void(authorization_id=authorization)
        order.status = Order.Status.EXPIRED
        return BuyOutcome(*_order_answer(order), order=order)
    order.status, order.receipt, order.paid_at = Order.Status.PAID, receipt, now
    order.payment_status, order.payment_reference = Order.PaymentStatus.AUTHORIZED, authorization
    return BuyOutcome(*_order_answer(order, order_lines), order=order)


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
        "total": order.total,
        "currency": order.currency,
        "lines": [
            {"sku": ln.sku_code, "sku_id": ln.sku_id, "quantity": ln.quantity, "deal": ln.deal_id} for ln in lines
        ],
    }


def _receipt_payload(order: Order, lines: list[OrderLine]) -> dict:
    return {
        "order": order.pk,
        "node": settings.NODE_ID,
        "seq": order.pk,
        "items": [line_body(ln) for ln in lines],
        "total": str(order.total),
        "currency": order.currency,
        "buyer": order.buyer_id,
        "iat": int(time.time()),
    }


def _line_units_return(line: OrderLine):
    """Give a line's units back where they came from: a flash deal's to the deal while it is
    open, else to the location the deal drew them from; other units to their stock row.
    Precondition: inside ``transaction.atomic()``. Returns the DealCount or StockCount."""
    if line.deal_id is not None:
        return deal_return(deal_id=line.deal_id, quantity=line.quantity)
    return stock_return(level_id=line.stock_level_id, quantity=line.quantity)


def order_release(*, order_id: int, to_status: str) -> bool:
    """Give a reserved order's stock (and per-buyer allowance) back and close it as
    ``to_status`` (declined, expired or failed). Returns False if it was no longer
    reserved (confirmed or released meanwhile). Opens its own transaction."""
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(pk=order_id, status=Order.Status.RESERVED).first()
        if order is None:
            return False
        order.status = to_status
        order.save(update_fields=["status"])
        for line in order.lines.all():
            count = _line_units_return(line)
            scope = line.limit_scope
            if line.counts_against_limit:
                allowance_return(buyer_id=order.buyer_id, sku_id=line.sku_id, quantity=line.quantity, scope=scope)
            event_type, payload, groups = _count_event(line=line, shop_id=order.shop_id, count=count)
            emit(event_type, payload, groups=groups)
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
    return bool(
        Order.objects.filter(**paid).update(payment_status=Order.PaymentStatus.CAPTURED, capture_reference=capture)
    )


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

    Raises RefundNotAllowed, RefundReasonRequired, OrderNotPaid, OrderAlreadyRefunded, or
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
        if order.payment_status == Order.PaymentStatus.CAPTURED:
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
            for line in lines:
                count = _line_units_return(line)
                event_type, payload, groups = _count_event(line=line, shop_id=locked.shop_id, count=count)
                emit(event_type, payload, groups=groups)
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
            groups=[f"shop.{locked.shop_id}"],
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
    if order.status != Order.Status.PAID:
        raise OrderNotPaid()


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
