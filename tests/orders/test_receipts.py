"""A buy's receipt verifies offline against the published JWKS, with joserfc directly."""

import base64
import json

import pytest
from django.core.management import call_command
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tests.factories import make_buyer, make_sku

pytestmark = pytest.mark.django_db


def _buy(client, key):
    sku = make_sku(stock=5, price="7.25")
    buyer = make_buyer()
    client.force_login(buyer)
    response = client.post(
        "/api/v1/orders/",
        {"sku": sku.code, "quantity": 2},
        content_type="application/json",
        headers={"Idempotency-Key": key},
    )
    assert response.status_code == 201
    return buyer, response.json()


def _verify(client, token):
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())
    return jws.deserialize_compact(token, keys, algorithms=["EdDSA"])


def test_order_receipt_verifies_against_jwks(client):
    buyer, order = _buy(client, "receipt-key-1")
    obj = _verify(client, order["receipt"])
    assert obj.headers()["typ"] == "receipt+jws"
    claims = json.loads(obj.payload)
    assert set(claims) == {"order", "node", "seq", "items", "total", "currency", "buyer", "iat"}
    assert claims["order"] == order["id"] and claims["total"] == "14.50" and claims["currency"] == "USD"
    assert claims["items"] == [
        {
            "sku": order["lines"][0]["sku"],
            "title": order["lines"][0]["title"],
            "quantity": 2,
            "unit_price": "7.25",
            "adjustments": [],
            "total": "14.50",
        }
    ]
    assert claims["buyer"] == buyer.pk and claims["node"] == "node-test"


def test_receipt_from_before_a_rotation_still_verifies(client):
    _, order = _buy(client, "receipt-key-2")
    call_command("rotate_receipt_key")
    assert json.loads(_verify(client, order["receipt"]).payload)["order"] == order["id"]


def test_tampered_receipt_is_rejected(client):
    _, order = _buy(client, "receipt-key-3")
    header, payload, signature = order["receipt"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["total"] = "0.01"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(JoseError):
        _verify(client, f"{header}.{forged}.{signature}")
