import re

from creatorcommerce.errors import Conflict, DomainError, PermissionDenied, Unprocessable

# A valid Idempotency-Key (else IdempotencyKeyInvalid).
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{8,255}$")


class IdempotencyKeyMissing(DomainError):
    code = "idempotency_key_missing"
    message = "Send an Idempotency-Key header (8 to 255 visible characters) with every buy."


class IdempotencyKeyInvalid(DomainError):
    code = "idempotency_key_invalid"
    message = "The Idempotency-Key must be 8 to 255 visible ASCII characters."


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency_key_in_flight"
    message = "A request with this Idempotency-Key is still being processed; retry shortly."


class IdempotencyKeyReused(Unprocessable):
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was used with a different request."


class CheckoutIncomplete(Conflict):
    code = "checkout_incomplete"
    message = "Save a payment method and an address before your first buy."


class ReservationExpired(Conflict):
    code = "reservation_expired"
    message = "Your reservation expired before the payment completed; you were not charged."


class AmountTooLarge(DomainError):
    code = "amount_too_large"
    message = "The order total is larger than can be charged in one order."


class OrderAlreadyRefunded(Conflict):
    code = "order_already_refunded"
    message = "This order has already been refunded."


class OrderNotPaid(Conflict):
    code = "order_not_paid"
    message = "Only a paid order can be refunded; this one was never paid."


class RefundNotAllowed(PermissionDenied):
    code = "refund_not_allowed"
    message = "Only staff and the creator of the order's shop can refund it."


class RefundReasonRequired(DomainError):
    code = "reason_required"
    message = "Say why the order is refunded; the reason is kept in the audit log."


class RefundFailed(DomainError):
    status = 503
    code = "refund_gateway_unavailable"
    message = "The payment provider did not confirm the refund; the order is unchanged. Try again."


class OfflineOverFloorLimit(DomainError):
    """On an edge node with the gateway unreachable: the buy is over ``OFFLINE_FLOOR_LIMIT``
    (docs/buying.md, "Offline selling"). ``limit`` and ``currency`` go in the answer."""

    status = 503
    code = "offline_over_floor_limit"
    message = (
        "The payment provider cannot be reached, and while it cannot, this venue accepts "
        "orders only up to {limit} {currency}. You were not charged; buy less or try again later."
    )

    def __init__(self, *, limit, currency: str):
        super().__init__(self.message.format(limit=limit, currency=currency), limit=str(limit), currency=currency)


class OrderCapturePending(Conflict):
    code = "order_capture_pending"
    message = (
        "This order was accepted offline and its payment is not taken yet; it can be refunded once it is "
        "paid, or closed if the payment is declined."
    )
