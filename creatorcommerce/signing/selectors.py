"""Reads from signing: the published key set and receipt verification."""

from __future__ import annotations

import base64
import binascii
import json

from cryptography.exceptions import InvalidSignature
from django.conf import settings
from django.db.models import F
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from .exceptions import InvalidReceipt
from .models import SigningKey
from .services import ALG, TYP

#: Header ``alg`` values a receipt may carry. Both label an Ed25519 signature: this node
#: signs with ``EdDSA`` (what PyJWT and Node's ``jose`` know); receipts issued before
#: docs/receipts.md's change say ``Ed25519`` and keep verifying. Everything else ("none", HS256, RS256...)
#: is refused before any key is touched, which is what defeats algorithm-confusion forgeries.
ACCEPTED_ALGS = frozenset({"Ed25519", "EdDSA"})

# The contract fixes the header to these three. Refusing the rest also refuses ``crit`` and
# ``b64`` (unencoded payloads) and keys carried in the token itself (``jwk``, ``jku``, ``x5c``),
# none of which a receipt needs.
_HEADER_FIELDS = frozenset({"alg", "kid", "typ"})

_VERIFY_REGISTRY = jws.JWSRegistry(algorithms=sorted(ACCEPTED_ALGS))


class _BatchRegistry(jws.JWSRegistry):
    # Sync batches (docs/edge.md) are larger than receipts; their receiver bounds the body.
    max_payload_length = 16 * 1024 * 1024


_BATCH_REGISTRY = _BatchRegistry(algorithms=sorted(ACCEPTED_ALGS))

# Only these members are published, whatever the stored JWK holds, so a private "d" can
# never reach the key set.
_PUBLIC_MEMBERS = ("kid", "kty", "crv", "x", "use", "alg")


def _public(jwk: dict) -> dict:
    published = {name: jwk[name] for name in _PUBLIC_MEMBERS if name in jwk}
    published.setdefault("use", "sig")
    # Keys stored before the switch say "Ed25519", which PyJWT cannot load: every key is
    # published as what it is used with now, the same OKP/Ed25519 key.
    published["alg"] = ALG
    return published


def jwks_public(*, node: str | None = None, registered: bool = False) -> dict:
    """The JWK Set (RFC 7517) of ``node`` (default: this node): the public halves of all its
    keys, current first, then retired ones newest first. Retired keys stay listed so that
    every receipt ever issued can still be verified. With ``registered``, the keys of the
    edge nodes registered with this node follow (docs/edge.md): what
    ``/.well-known/jwks.json`` publishes, so an edge's receipt verifies anywhere."""
    node = node or settings.NODE_ID
    order = (F("retired_at").desc(nulls_first=True), "-created_at", "-id")
    stored = list(SigningKey.objects.filter(node=node).order_by(*order).values_list("public_jwk", flat=True))
    if registered:
        others = SigningKey.objects.exclude(node=node).order_by("node", *order)
        stored += list(others.values_list("public_jwk", flat=True))
    return {"keys": [_public(jwk) for jwk in stored]}


def receipt_open(*, token: str, node: str | None = None, registered: bool = False) -> tuple[dict, dict]:
    """Verify ``token`` against the stored keys of ``node`` (default: this node) and return
    ``(header, payload)``. Named after NaCl's ``crypto_sign_open``: nothing of the token is
    returned unless its signature checks. With ``registered``, a key of an edge node
    registered here is accepted too, if the receipt's ``node`` names that edge
    (docs/edge.md; reason ``node`` otherwise).

    Raises ``InvalidReceipt`` (with ``details["reason"]``) for a malformed token, an ``alg``
    other than Ed25519/EdDSA, a header other than alg/kid/typ, a ``typ`` other than
    ``receipt+jws``, an unknown ``kid``, a bad signature, or a payload that is not a JSON
    object. Offline: reads only this node's database.
    """
    header, body, key_node = jws_open(token=token, typ=TYP, node=node, registered=registered, error=InvalidReceipt)
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise InvalidReceipt("The receipt payload is not JSON.", reason="payload") from exc
    if not isinstance(payload, dict):
        raise InvalidReceipt("The receipt payload is not a JSON object.", reason="payload")
    if registered and key_node != (node or settings.NODE_ID) and payload.get("node") != key_node:
        raise InvalidReceipt("The receipt names another node than its key's.", reason="node")
    return header, payload


def jws_open(*, token: str, typ: str, node: str | None = None, registered: bool = False, error=InvalidReceipt):
    """Verify a JWS compact token signed by a key of ``node`` (default: this node; with
    ``registered`` also any edge registered here) with header exactly ``{"alg": "EdDSA" (or
    "Ed25519"), "kid", "typ": typ}``. Returns ``(header, payload bytes, the key's node)``;
    raises ``error`` with ``details["reason"]`` (see ``receipt_open``) otherwise."""
    node = node or settings.NODE_ID
    if not isinstance(token, str) or not token:
        raise error("The token is empty.", reason="malformed")
    try:
        registry = _VERIFY_REGISTRY if typ == TYP else _BATCH_REGISTRY
        obj = jws.extract_compact(token.encode("ascii"), registry=registry)
    except (JoseError, ValueError) as exc:
        raise error("The token is not a JWS compact token.", reason="malformed") from exc
    header = obj.headers()

    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ACCEPTED_ALGS:
        raise error(f"Tokens are signed with Ed25519; alg {alg!r} is refused.", reason="alg")
    if set(header) != _HEADER_FIELDS:
        raise error("The token header must hold exactly alg, kid and typ.", reason="header")
    if header["typ"] != typ:
        raise error(f"The token typ must be {typ!r}.", reason="typ")
    kid = header["kid"]
    keys = SigningKey.objects.filter(kid=kid) if registered else SigningKey.objects.filter(node=node, kid=kid)
    found = keys.values_list("public_jwk", "node").first() if isinstance(kid, str) else None
    if found is None:
        raise error("The token was not signed with a key known here.", reason="unknown_kid")
    jwk, key_node = found

    # Both labels mean the same Ed25519 verification over the same key, and the header alg
    # is already restricted above, so the signature is checked with the key's own Ed25519
    # operation (joserfc would warn "EdDSA is deprecated" on every receipt it checks).
    key = OKPKey.import_key({name: value for name, value in jwk.items() if name not in ("alg", "d")})
    if not _signature_valid(token, key):
        raise error("The signature does not match the content.", reason="signature")
    return dict(header), obj.payload, key_node


def _signature_valid(token: str, key: OKPKey) -> bool:
    header_segment, payload_segment, signature_segment = token.split(".")
    try:
        signature = base64.urlsafe_b64decode(signature_segment + "=" * (-len(signature_segment) % 4))
        key.get_op_key("verify").verify(signature, f"{header_segment}.{payload_segment}".encode("ascii"))
    except (InvalidSignature, binascii.Error, ValueError, JoseError):
        return False
    return True


def receipt_verify(*, token: str, node: str | None = None) -> dict:
    """Verify ``token`` against this node's keys and return its payload.

    Raises ``InvalidReceipt`` when it does not verify; see ``receipt_open``.
    """
    _header, payload = receipt_open(token=token, node=node)
    return payload
