"""The bundled test gateway: idempotent per reference, bounded memory (no database)."""

from decimal import Decimal

import pytest

from apps.orders.payments import InvalidPaymentToken, PaymentDeclined, TestGateway


@pytest.fixture
def gateway(monkeypatch):
    # A fresh ledger and tables per test, so the class-level state of other tests is kept.
    for name in ("_authorizations", "_authorization_of_reference", "_captures"):
        monkeypatch.setattr(TestGateway, name, {})
    monkeypatch.setattr(TestGateway, "ledger", [])
    return TestGateway()


def test_authorize_is_idempotent_per_reference(gateway):
    first = gateway.authorize(token="tok_ok", amount=Decimal("5"), currency="USD", reference="buy-1-a")
    again = gateway.authorize(token="tok_ok", amount=Decimal("5"), currency="USD", reference="buy-1-a")
    other = gateway.authorize(token="tok_ok", amount=Decimal("5"), currency="USD", reference="buy-1-b")
    assert first == again != other
    assert [op for op, _, _ in gateway.ledger] == ["authorize", "authorize"]


def test_void_releases_the_reference_and_capture_is_once(gateway):
    auth = gateway.authorize(token="tok_ok", amount=Decimal("5"), currency="USD", reference="buy-2-a")
    gateway.void(authorization_id=auth)
    retried = gateway.authorize(token="tok_ok", amount=Decimal("5"), currency="USD", reference="buy-2-a")
    assert retried != auth
    assert gateway.capture(authorization_id=retried, amount=Decimal("5")) == gateway.capture(
        authorization_id=retried, amount=Decimal("5")
    )
    assert TestGateway.captures_of(retried) == 1 and TestGateway.captures_of(auth) == 0


def test_bad_tokens(gateway):
    with pytest.raises(PaymentDeclined):
        gateway.authorize(token="tok_declined", amount=Decimal("1"), currency="USD", reference="r")
    with pytest.raises(InvalidPaymentToken):
        gateway.authorize(token="tok_nope", amount=Decimal("1"), currency="USD", reference="r")
    assert gateway.ledger == []


def test_memory_is_capped_oldest_first(gateway, monkeypatch):
    monkeypatch.setattr(TestGateway, "KEEP", 50)
    auths = [
        gateway.authorize(token="tok_ok", amount=Decimal("1"), currency="USD", reference=f"ref-{n}") for n in range(200)
    ]
    assert len(TestGateway._authorizations) == 50 and len(TestGateway._authorization_of_reference) == 50
    assert 50 <= len(gateway.ledger) <= 55
    # The newest are still known (idempotent); the oldest were dropped.
    assert gateway.authorize(token="tok_ok", amount=Decimal("1"), currency="USD", reference="ref-199") == auths[-1]
    assert auths[0] not in TestGateway._authorizations
