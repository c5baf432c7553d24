"""Fixtures for the receipt-signing tests."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest

from creatorcommerce.signing.services import signing_key_cache_clear


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    """The signing key cache outlives a test's database; a kid cached by one test would not
    exist in the next test's rolled-back database."""
    signing_key_cache_clear()
    yield
    signing_key_cache_clear()


@pytest.fixture
def receipt_payload():
    """A receipt payload shaped like the contract's."""
    return {
        "order": 42,
        "node": "node-test",
        "seq": 7,
        "items": [{"sku": "TEE-M", "quantity": 2, "price": Decimal("12.50")}],
        "total": Decimal("25.00"),
        "currency": "EUR",
        "buyer": 3,
        "iat": 1_767_225_600,
    }


def b64(data: bytes | dict) -> str:
    if isinstance(data, dict):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def token_parts(token: str) -> tuple[dict, dict, str]:
    header, payload, signature = token.split(".")
    return json.loads(unb64(header)), json.loads(unb64(payload)), signature
