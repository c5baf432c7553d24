from creatorcommerce.errors import Conflict, DomainError, Unprocessable


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
