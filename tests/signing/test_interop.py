"""Receipts verify with the usual JOSE libraries and nothing registered by hand (issue 14,
defect 14): the token says ``"alg": "EdDSA"`` and the published JWK is OKP/Ed25519 with
``"alg": "EdDSA"``, the one name joserfc, PyJWT and Node's ``jose`` all know."""

from __future__ import annotations

import json
import warnings

import jwt
import pytest
from joserfc import jws
from joserfc.jwk import KeySet, OKPKey

from creatorcommerce.signing.selectors import receipt_verify
from creatorcommerce.signing.services import receipt_sign, signing_key_current

pytestmark = pytest.mark.django_db

URL = "/.well-known/jwks.json"


def test_receipt_verifies_with_pyjwt_from_the_published_jwks(client, receipt_payload):
    token = receipt_sign(payload=receipt_payload)

    # What a PyJWT user writes: load the key set as published, pick the token's kid, decode.
    key_set = jwt.PyJWKSet.from_dict(client.get(URL).json())
    kid = jwt.get_unverified_header(token)["kid"]
    claims = jwt.decode(token, key=key_set[kid], algorithms=["EdDSA"])

    assert claims["order"] == receipt_payload["order"]
    assert claims["total"] == "25.00"


def test_receipt_verifies_with_joserfc_from_the_published_jwks(client, receipt_payload):
    token = receipt_sign(payload=receipt_payload)

    keys = KeySet.import_key_set(client.get(URL).json())
    obj = jws.deserialize_compact(token, keys, algorithms=["EdDSA"])

    assert obj.headers()["alg"] == "EdDSA"
    assert json.loads(obj.payload)["order"] == receipt_payload["order"]


def test_published_key_is_okp_ed25519_labelled_eddsa(client):
    signing_key_current()
    (key,) = client.get(URL).json()["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")


def test_tampered_receipt_fails_with_pyjwt(client, receipt_payload):
    token = receipt_sign(payload=receipt_payload)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload[:-2]}AA.{signature}"
    key_set = jwt.PyJWKSet.from_dict(client.get(URL).json())
    with pytest.raises(jwt.PyJWTError):
        jwt.decode(forged, key=key_set[jwt.get_unverified_header(token)["kid"]], algorithms=["EdDSA"])


def test_old_receipt_labelled_ed25519_still_verifies_with_verify_receipt(receipt_payload):
    """Receipts issued before the switch carry ``"alg": "Ed25519"``; our verifier keeps
    accepting them (same key, same signature)."""
    stored = signing_key_current()
    private = OKPKey.import_key({k: v for k, v in stored.private_jwk.items() if k != "alg"})
    old = jws.serialize_compact(
        {"alg": "Ed25519", "kid": stored.kid, "typ": "receipt+jws"},
        json.dumps({"order": 9}).encode(),
        private,
        algorithms=["Ed25519"],
    )
    assert receipt_verify(token=old) == {"order": 9}


def test_signing_and_verifying_a_receipt_warns_nothing(receipt_payload):
    """joserfc marks "EdDSA" deprecated (RFC 9864) and would warn on every buy; the node
    neither signs nor verifies through that path's warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        token = receipt_sign(payload=receipt_payload)
        assert receipt_verify(token=token)["order"] == receipt_payload["order"]


@pytest.mark.django_db(transaction=True)
def test_the_pyjwt_example_shown_to_buyers_verifies_a_receipt_over_http(live_server, receipt_payload):
    """The snippet on the order page (templates/orders/detail.html), run as written
    against a running server: PyJWKClient fetches the JWKS over HTTP."""
    token = receipt_sign(payload=receipt_payload)
    keys = jwt.PyJWKClient(f"{live_server.url}/.well-known/jwks.json")
    key = keys.get_signing_key_from_jwt(token)
    receipt = jwt.decode(token, key=key, algorithms=["EdDSA"])
    assert (receipt["order"], receipt["total"], receipt["currency"]) == (42, "25.00", "EUR")


def test_a_key_stored_before_the_switch_is_published_as_eddsa_and_verifies_new_receipts(client, receipt_payload):
    """Keys created before receipts said EdDSA were stored with "alg": "Ed25519"; the JWKS
    publishes them as EdDSA, so PyJWT loads them and verifies what they sign."""
    from creatorcommerce.signing.models import SigningKey

    key = signing_key_current()
    SigningKey.objects.filter(pk=key.pk).update(
        public_jwk={**key.public_jwk, "alg": "Ed25519"}, private_jwk={**key.private_jwk, "alg": "Ed25519"}
    )
    token = receipt_sign(payload=receipt_payload)

    published = client.get(URL).json()
    assert [k["alg"] for k in published["keys"]] == ["EdDSA"]
    claims = jwt.decode(token, key=jwt.PyJWKSet.from_dict(published)[key.kid], algorithms=["EdDSA"])
    assert claims["order"] == receipt_payload["order"]
