"""The payment gateway interface, and the bundled test gateway.

A gateway does four things (``PaymentGateway`` below): ``authorize`` (hold the amount on
the buyer's saved token), ``capture`` (take it), ``void`` (release a hold) and ``refund``
(give a captured amount back; ``orders.services.order_refund`` calls it). The buy path authorises
outside any database transaction, after the stock is reserved; capture runs later, from
the ``order.placed`` event. Every call must be idempotent per reference, because a retry
after a crash may repeat it.

Plugging in a real gateway (e.g. Stripe): write a class with these methods -
``authorize`` -> ``PaymentIntent.create(amount, currency, customer, payment_method,
capture_method="manual", confirm=True, idempotency_key=reference)``, ``capture`` ->
``PaymentIntent.capture``, ``void`` -> ``PaymentIntent.cancel``, ``refund`` ->
``Refund.create`` - and name it in ``PAYMENT_GATEWAY``. Saved tokens come from the
gateway's client-side tokenisation; card data never reaches this server.
"""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from creatorcommerce.errors import DomainError


class PaymentDeclined(DomainError):
    status = 402
    code = "payment_declined"
    message = "The payment was declined. Your card was not charged."


class InvalidPaymentToken(DomainError):
    code = "invalid_payment_token"
    message = "The payment token is not valid for this gateway."


class GatewayUnavailable(DomainError):
    status = 503
    code = "payment_gateway_unavailable"
    message = "The payment provider did not answer; you were not charged. Try again."


class HoldNotAvailable(Exception):
    """The authorisation was voided (so it cannot be captured) or captured (so it cannot be
    voided, only refunded): a capture and a refund met. Not the buyer's fault, not an outage."""


@dataclass(frozen=True)
class CardInfo:
    brand: str
    last4: str


class PaymentGateway(Protocol):
    """What ``PAYMENT_GATEWAY`` must name. Every call is idempotent per reference or id, is
    made outside any database transaction, and raises ``PaymentDeclined`` or
    ``InvalidPaymentToken`` for the buyer's card, anything else for an unreachable gateway."""

    def validate_token(self, token: str) -> CardInfo: ...

    def authorize(self, *, token: str, amount: Decimal, currency: str, reference: str) -> str:
        """Hold ``amount``; returns the authorization id."""

    def capture(self, *, authorization_id: str, amount: Decimal) -> str:
        """Take a held amount; returns the capture id. Raises ``HoldNotAvailable`` if the
        hold was voided."""

    def void(self, *, authorization_id: str) -> None:
        """Release a hold that was not captured. Raises ``HoldNotAvailable`` if it was."""

    def refund(self, *, capture_id: str, amount: Decimal, reference: str) -> str:
        """Give ``amount`` of a capture back; the same ``reference`` refunds once. Returns
        the refund id."""


class TestGatewayUnreachable(ConnectionError):
    """The bundled gateway's outage switch is on (``TEST_GATEWAY_DOWN_FILE`` exists)."""


def test_gateway_down() -> bool:
    """Whether the TestGateway plays unreachable now: ``TEST_GATEWAY_DOWN_FILE`` names a
    file and it exists (``manage.py test_gateway down|up``; docs/buying.md, "Offline selling")."""
    path = settings.TEST_GATEWAY_DOWN_FILE
    return bool(path) and os.path.exists(path)


class TestGateway:
    """Accepts ``tok_ok``, declines ``tok_declined`` at authorisation; rejects other tokens.
    While ``test_gateway_down()``, ``authorize``, ``capture``, ``void`` and ``refund`` raise
    ``TestGatewayUnreachable`` as a gateway that cannot be reached would (tokens are still
    validated: a real gateway tokenises in the browser).

    It keeps a ledger of operations in memory (per process), so tests can check that
    nothing was captured twice. Operations are idempotent per reference, like a real one;
    the look-up is by key, so a long sell-out does not slow each buy down (a scan of all
    holds was ~0.4 ms per buy after 8,000 buys). What it remembers is capped at
    ``KEEP`` entries per table, oldest dropped first, so a long-running demo node does not
    grow without bound.
    """

    KEEP = 100_000

    TOKENS = {"tok_ok": CardInfo("visa", "4242"), "tok_declined": CardInfo("visa", "0002")}
    _lock = threading.Lock()
    ledger: list[tuple[str, str, Decimal]] = []
    _authorizations: dict[str, tuple[str, Decimal]] = {}
    _authorization_of_reference: dict[str, str] = {}
    _captures: dict[str, str] = {}
    _voided: dict[str, bool] = {}
    _refunds: dict[str, str] = {}

    def validate_token(self, token: str) -> CardInfo:
        if token not in self.TOKENS:
            raise InvalidPaymentToken()
        return self.TOKENS[token]

    def authorize(self, *, token: str, amount: Decimal, currency: str, reference: str) -> str:
        _reachable_or_raise()
        if token == "tok_declined":
            raise PaymentDeclined()
        if token not in self.TOKENS:
            raise InvalidPaymentToken()
        with self._lock:
            auth_id = self._authorization_of_reference.get(reference)
            if auth_id is not None:
                return auth_id
            auth_id = f"auth_{uuid.uuid4().hex[:16]}"
            _keep(self._authorization_of_reference, reference, auth_id, self.KEEP)
            _keep(self._authorizations, auth_id, (reference, amount), self.KEEP)
            self._record(("authorize", auth_id, amount))
        return auth_id

    def capture(self, *, authorization_id: str, amount: Decimal) -> str:
        _reachable_or_raise()
        with self._lock:
            if authorization_id in self._captures:
                return self._captures[authorization_id]
            if authorization_id in self._voided:
                raise HoldNotAvailable(f"{authorization_id} was voided")
            capture_id = f"cap_{uuid.uuid4().hex[:16]}"
            _keep(self._captures, authorization_id, capture_id, self.KEEP)
            self._record(("capture", authorization_id, amount))
        return capture_id

    def void(self, *, authorization_id: str) -> None:
        _reachable_or_raise()
        with self._lock:
            if authorization_id in self._captures:
                raise HoldNotAvailable(f"{authorization_id} was captured; refund it instead")
            _keep(self._voided, authorization_id, True, self.KEEP)
            held = self._authorizations.pop(authorization_id, None)
            if held is not None:
                self._authorization_of_reference.pop(held[0], None)
                self._record(("void", authorization_id, Decimal("0")))

    def refund(self, *, capture_id: str, amount: Decimal, reference: str) -> str:
        """Refund ``amount`` of a capture. Idempotent per ``reference``: the same reference
        refunds once and answers the same refund id again."""
        _reachable_or_raise()
        with self._lock:
            refund_id = self._refunds.get(reference)
            if refund_id is not None:
                return refund_id
            refund_id = f"re_{uuid.uuid4().hex[:16]}"
            _keep(self._refunds, reference, refund_id, self.KEEP)
            self._record(("refund", capture_id, amount))
        return refund_id

    @classmethod
    def refunds_of(cls, capture_id: str) -> int:
        return sum(1 for op, ref, _ in cls.ledger if op == "refund" and ref == capture_id)

    @classmethod
    def _record(cls, operation: tuple[str, str, Decimal]) -> None:
        cls.ledger.append(operation)
        if len(cls.ledger) > cls.KEEP + cls.KEEP // 10:  # trimmed in chunks, not per call
            del cls.ledger[: len(cls.ledger) - cls.KEEP]

    @classmethod
    def captures_of(cls, authorization_id: str) -> int:
        return sum(1 for op, ref, _ in cls.ledger if op == "capture" and ref == authorization_id)


def _reachable_or_raise() -> None:
    if test_gateway_down():
        raise TestGatewayUnreachable("the test gateway is switched to unreachable (TEST_GATEWAY_DOWN_FILE)")


def _keep(table: dict, key, value, limit: int) -> None:
    """``table[key] = value``, dropping the oldest entries beyond ``limit``."""
    table[key] = value
    while len(table) > limit:
        del table[next(iter(table))]


@lru_cache(maxsize=1)
def _gateway_class(path: str):
    return import_string(path)


def get_gateway() -> PaymentGateway:
    return _gateway_class(settings.PAYMENT_GATEWAY)()
