"""Verifying receipts against this node's keys: only genuine Ed25519 receipts pass."""

from __future__ import annotations

import hashlib
import hmac
import json
import warnings

import pytest
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import OKPKey

from creatorcommerce.signing.exceptions import InvalidReceipt
from creatorcommerce.signing.selectors import jwks_public, receipt_open, receipt_verify
from creatorcommerce.signing.services import receipt_sign, signing_key_current, signing_key_rotate

from .conftest import b64, token_parts, unb64

pytestmark = pytest.mark.django_db


def _reason(token: str) -> str:
    with pytest.raises(InvalidReceipt) as excinfo:
        receipt_verify(token=token)
    assert excinfo.value.code == "invalid_receipt"
    assert excinfo.value.status == 400
    return excinfo.value.details["reason"]


def test_genuine_receipt_verifies(receipt_payload):
    token = receipt_sign(payload=receipt_payload)

    header, payload = receipt_open(token=token)

    assert header == {"alg": "EdDSA", "kid": signing_key_current().kid, "typ": "receipt+jws"}
    assert payload == {
        **receipt_payload,
        "items": [{"sku": "TEE-M", "quantity": 2, "price": "12.50"}],
        "total": "25.00",
    }


def test_tampered_payload_rejected(receipt_payload):
    header, payload, signature = receipt_sign(payload=receipt_payload).split(".")
    cheaper = json.loads(unb64(payload)) | {"total": "0.01"}

    assert _reason(f"{header}.{b64(cheaper)}.{signature}") == "signature"


def test_tampered_signature_rejected(receipt_payload):
    header, payload, signature = receipt_sign(payload=receipt_payload).split(".")
    flipped = bytearray(unb64(signature))
    flipped[0] ^= 1

    assert _reason(f"{header}.{payload}.{b64(bytes(flipped))}") == "signature"


def test_unknown_kid_rejected(receipt_payload):
    header, payload, signature = receipt_sign(payload=receipt_payload).split(".")
    renamed = json.loads(unb64(header)) | {"kid": "node-test-20990101-abcdef"}

    assert _reason(f"{b64(renamed)}.{payload}.{signature}") == "unknown_kid"


def test_receipt_signed_with_a_foreign_key_under_our_kid_rejected(receipt_payload):
    kid = signing_key_current().kid
    foreign = OKPKey.generate_key("Ed25519", parameters={"kid": kid})
    token = jws.serialize_compact(
        {"alg": "Ed25519", "kid": kid, "typ": "receipt+jws"}, json.dumps({"order": 1}), foreign, algorithms=["Ed25519"]
    )

    assert _reason(token) == "signature"


def test_receipt_of_another_node_rejected(receipt_payload, settings):
    settings.NODE_ID = "node-other"
    token = receipt_sign(payload=receipt_payload)
    settings.NODE_ID = "node-test"

    assert _reason(token) == "unknown_kid"
    assert receipt_verify(token=token, node="node-other")["order"] == 42


def test_alg_none_rejected(receipt_payload):
    header, payload, _signature = token_parts(receipt_sign(payload=receipt_payload))

    unsigned = f"{b64(header | {'alg': 'none'})}.{b64(payload)}."

    assert _reason(unsigned) == "alg"


@pytest.mark.parametrize("secret", ["x", "x-decoded", "public-jwk"])
def test_hs256_forgery_with_the_public_key_rejected(receipt_payload, secret):
    """The classic algorithm-confusion attack: sign with HMAC, using what is public as the key."""
    key = signing_key_current()
    x = key.public_jwk["x"]
    hmac_key = {
        "x": x.encode(),
        "x-decoded": unb64(x),
        "public-jwk": json.dumps(key.public_jwk).encode(),
    }[secret]
    header = b64({"alg": "HS256", "kid": key.kid, "typ": "receipt+jws"})
    payload = b64(receipt_payload | {"total": "0.01", "items": [], "buyer": 666})
    signature = b64(hmac.new(hmac_key, f"{header}.{payload}".encode(), hashlib.sha256).digest())

    assert _reason(f"{header}.{payload}.{signature}") == "alg"


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256", "Ed448", "none", "NONE", "", None, ["Ed25519"]])
def test_any_other_alg_rejected_before_the_signature(receipt_payload, alg):
    header, payload, signature = receipt_sign(payload=receipt_payload).split(".")
    relabelled = json.loads(unb64(header)) | {"alg": alg}

    assert _reason(f"{b64(relabelled)}.{payload}.{signature}") == "alg"


def test_eddsa_label_made_by_joserfc_accepted(receipt_payload):
    stored = signing_key_current()
    private = OKPKey.import_key({k: v for k, v in stored.private_jwk.items() if k != "alg"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        token = jws.serialize_compact(
            {"alg": "EdDSA", "kid": stored.kid, "typ": "receipt+jws"}, b'{"order":1}', private, algorithms=["EdDSA"]
        )

    # joserfc flags EdDSA as deprecated by RFC 9864; the verifier accepts it without a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert receipt_verify(token=token) == {"order": 1}


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"typ": "JWT"}, "typ"),
        ({"b64": False, "crit": ["b64"]}, "header"),
        ({"jku": "https://evil.example/jwks.json"}, "header"),
    ],
)
def test_header_other_than_the_contracts_rejected(receipt_payload, extra, reason):
    header, payload, signature = receipt_sign(payload=receipt_payload).split(".")
    changed = json.loads(unb64(header)) | extra

    assert _reason(f"{b64(changed)}.{payload}.{signature}") == reason


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "!!!.e30.AA", "e30.e30.AA", "ünïcode.a.b", None, 42])
def test_malformed_tokens_rejected_with_a_domain_error(token):
    signing_key_current()
    with pytest.raises(InvalidReceipt):
        receipt_verify(token=token)


def test_payload_that_is_not_an_object_rejected():
    stored = signing_key_current()
    private = OKPKey.import_key({k: v for k, v in stored.private_jwk.items() if k != "alg"})
    token = jws.serialize_compact(
        {"alg": "Ed25519", "kid": stored.kid, "typ": "receipt+jws"}, b"[1, 2]", private, algorithms=["Ed25519"]
    )

    assert _reason(token) == "payload"


def test_receipt_signed_before_rotation_still_verifies(receipt_payload):
    token = receipt_sign(payload=receipt_payload)
    signing_key_rotate()
    signing_key_rotate()

    assert receipt_verify(token=token)["order"] == 42


def test_jwks_lists_current_then_retired_keys_public_members_only():
    first = signing_key_current()
    new, _retired = signing_key_rotate()

    keys = jwks_public()["keys"]

    assert [key["kid"] for key in keys] == [new.kid, first.kid]
    for key in keys:
        assert set(key) == {"kid", "kty", "crv", "x", "use", "alg"}
        assert (key["kty"], key["crv"], key["use"], key["alg"]) == ("OKP", "Ed25519", "sig", "EdDSA")


def test_jwks_of_a_node_without_keys_is_empty():
    assert jwks_public() == {"keys": []}
