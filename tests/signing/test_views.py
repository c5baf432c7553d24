"""GET /.well-known/jwks.json: anyone can check a receipt with a standard JOSE library."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet

from creatorcommerce.signing.services import receipt_sign, signing_key_current

from .conftest import b64, token_parts, unb64

pytestmark = pytest.mark.django_db

URL = "/.well-known/jwks.json"


def _keyset(client) -> KeySet:
    response = client.get(URL)
    assert response.status_code == 200
    return KeySet.import_key_set(response.json())


def _verify_with_joserfc(client, token: str) -> dict:
    """Verification as an outside client does it: the published key set and joserfc, not
    the project's selector."""
    obj = jws.deserialize_compact(token, _keyset(client), algorithms=["EdDSA"])
    return json.loads(obj.payload)


def test_jwks_endpoint_lists_the_current_key(client):
    key = signing_key_current()

    response = client.get(URL)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"public", "max-age=300"} <= cache_control
    assert response.json() == {
        "keys": [
            {"kid": key.kid, "kty": "OKP", "crv": "Ed25519", "x": key.public_jwk["x"], "use": "sig", "alg": "EdDSA"}
        ]
    }
    assert key.private_jwk["d"] not in response.content.decode()


def test_jwks_endpoint_needs_no_login_and_refuses_writes(client):
    signing_key_current()
    assert client.get(URL).status_code == 200
    assert client.head(URL).status_code == 200
    response = client.post(URL)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_empty_key_set_is_not_cached(client):
    response = client.get(URL)

    assert response.json() == {"keys": []}
    assert "no-cache" in response["Cache-Control"]


def test_receipt_verifies_with_joserfc_and_the_published_keys(client, receipt_payload):
    token = receipt_sign(payload=receipt_payload)

    assert _verify_with_joserfc(client, token)["total"] == "25.00"


def test_tampered_receipt_fails_with_joserfc(client, receipt_payload):
    header, payload, signature = receipt_sign(payload=receipt_payload).split(".")
    tampered = json.loads(unb64(payload)) | {"total": "0.01"}

    with pytest.raises(BadSignatureError):
        _verify_with_joserfc(client, f"{header}.{b64(tampered)}.{signature}")


def test_receipt_signed_before_rotation_verifies_with_joserfc_after_rotate_command(client, receipt_payload):
    token = receipt_sign(payload=receipt_payload)
    kid = token_parts(token)[0]["kid"]

    call_command("rotate_receipt_key", stdout=io.StringIO())

    published = [key["kid"] for key in client.get(URL).json()["keys"]]
    assert len(published) == 2 and published[1] == kid
    assert _verify_with_joserfc(client, token)["order"] == 42


def test_alg_none_token_fails_with_joserfc(client, receipt_payload):
    header, payload, _signature = token_parts(receipt_sign(payload=receipt_payload))

    with pytest.raises(JoseError):
        _verify_with_joserfc(client, f"{b64(header | {'alg': 'none'})}.{b64(payload)}.")
