"""Writes to signing: the node's receipt key, its rotation, and signing receipts.

Algorithm: receipts carry ``"alg": "EdDSA"`` (RFC 8037) over an OKP/Ed25519 key: the one
name every JOSE library verifies without registration (joserfc, PyJWT, Node's ``jose``);
RFC 9864's ``"Ed25519"``, which receipts carried before, is unknown to PyJWT. Old receipts
labelled ``Ed25519`` still verify with ``receipt_verify`` (see ``selectors``). joserfc 1.8
warns that ``EdDSA`` is deprecated on every use, so the compact token is assembled here
(RFC 7515, section 7.1) and signed with the key's own Ed25519 operation: the same bytes
joserfc would produce, without a warning per buy. See docs/receipts.md.

Signing is on the buy hot path, so the loaded current key is cached in-process for
``CURRENT_KEY_TTL`` seconds: a sign is then pure CPU, with no query. A rotation made in this
process empties the cache when it commits; a rotation made by another process is picked up
here when the entry expires. Until then this process keeps signing with the just-retired
key, which is harmless: retired keys stay published in the JWKS and keep verifying.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from joserfc import jws
from joserfc.jwk import OKPKey

from .models import SigningKey

ALG = "EdDSA"
TYP = "receipt+jws"

#: Seconds a process trusts its cached current key before re-reading the database.
CURRENT_KEY_TTL = 60.0

# Used for its payload-size limit only: a receipt must stay verifiable by joserfc.
_SIGN_REGISTRY = jws.JWSRegistry(algorithms=["Ed25519"])

# Creating a key can lose a race (another process inserted the node's current key) or, very
# rarely, draw a kid that already exists; both surface as IntegrityError and are retried.
# Each lost race means another transaction committed a key, so retries always progress; the
# bound only turns a broken database into an error instead of a loop. Of n concurrent
# rotations the last one loses n - 1 times, hence more than a handful of attempts.
_ATTEMPTS = 10


@dataclass(frozen=True)
class _LoadedKey:
    kid: str
    key: OKPKey
    checked_at: float


# node -> the current key, ready to sign. Entries are replaced whole, never mutated, so
# threads can read the dict without a lock.
_current_keys: dict[str, _LoadedKey] = {}


def signing_key_cache_clear(*, node: str | None = None) -> None:
    """Forget the cached current key of ``node`` (of every node when ``None``), so that the
    next ``receipt_sign`` re-reads the database."""
    if node is None:
        _current_keys.clear()
    else:
        _current_keys.pop(node, None)


def _signing_key_create(*, node: str) -> SigningKey:
    created_at = timezone.now()
    kid = f"{node}-{created_at:%Y%m%d}-{secrets.token_hex(3)}"
    key = OKPKey.generate_key("Ed25519", parameters={"kid": kid, "use": "sig", "alg": ALG}, private=True)
    return SigningKey.objects.create(
        kid=kid,
        node=node,
        private_jwk=key.as_dict(private=True),
        public_jwk=key.as_dict(private=False),
        created_at=created_at,
    )


def signing_key_current(*, node: str | None = None) -> SigningKey:
    """Return the current (not retired) signing key of ``node`` (default: this node),
    creating it on first use.

    Race-safe: when two processes both find no key, both try to insert one; the partial
    unique constraint lets one commit and the loser re-reads the winner's key. May run inside
    the caller's transaction; a key it creates then commits or rolls back with that
    transaction. Under PostgreSQL this relies on READ COMMITTED (Django's default) so the
    re-read sees the winner's row.
    """
    node = node or settings.NODE_ID
    for _ in range(_ATTEMPTS):
        key = SigningKey.objects.filter(node=node, retired_at__isnull=True).first()
        if key is not None:
            return key
        try:
            # A savepoint, so that losing the race does not break the caller's transaction.
            with transaction.atomic():
                return _signing_key_create(node=node)
        except IntegrityError:
            continue
    raise RuntimeError(f"could not obtain a current signing key for node {node!r}")


def signing_key_rotate(*, node: str | None = None) -> tuple[SigningKey, SigningKey | None]:
    """Retire the current key of ``node`` (default: this node) and create its successor,
    atomically. Returns ``(new_key, retired_key)``; ``retired_key`` is ``None`` when the
    node had no key yet.

    The retired key is kept: its public half stays in the JWKS, so receipts it signed still
    verify. Opens its own transaction (a savepoint inside the caller's); this process's
    cached key is dropped after commit, other processes pick up the new key within
    ``CURRENT_KEY_TTL``. Two concurrent rotations both succeed, one after the other.
    """
    node = node or settings.NODE_ID
    for _ in range(_ATTEMPTS):
        try:
            with transaction.atomic():
                retired = SigningKey.objects.select_for_update().filter(node=node, retired_at__isnull=True).first()
                if retired is not None:
                    retired.retired_at = timezone.now()
                    retired.save(update_fields=["retired_at"])
                new = _signing_key_create(node=node)
                # After commit only: dropping it earlier would let a concurrent sign reload
                # the old key and cache it again; on rollback the old key stays current.
                transaction.on_commit(partial(signing_key_cache_clear, node=node), robust=True)
        except IntegrityError:
            # A concurrent rotation or first use committed a new current key after our
            # read (PostgreSQL re-checks the locked row and finds it retired); rotate that one.
            continue
        return new, retired
    raise RuntimeError(f"could not rotate the signing key of node {node!r}")


def _current_key_loaded(node: str) -> _LoadedKey:
    now = time.monotonic()
    cached = _current_keys.get(node)
    if cached is not None and now - cached.checked_at < CURRENT_KEY_TTL:
        return cached
    row = signing_key_current(node=node)
    if cached is not None and cached.kid == row.kid:
        loaded = _LoadedKey(kid=cached.kid, key=cached.key, checked_at=now)
    else:
        loaded = _LoadedKey(kid=row.kid, key=OKPKey.import_key(row.private_jwk), checked_at=now)
    if transaction.get_connection().in_atomic_block:
        # The row may be uncommitted (created just now, or by a rotation earlier in this
        # transaction). Caching it before commit could leave this process signing with a
        # key that a rollback erased and that no JWKS will ever publish.
        transaction.on_commit(partial(_current_keys.__setitem__, node, loaded), robust=True)
    else:
        _current_keys[node] = loaded
    return loaded


def signing_key_register(*, node: str, public_jwk: dict) -> tuple[SigningKey, bool]:
    """Record ``public_jwk`` (an OKP/Ed25519 public JWK with a ``kid``) as the current key
    of another ``node`` - an edge registered with this cloud (docs/edge.md, "Node
    identity") - so that its receipts and sync batches verify here and its key is published
    in this node's JWKS. Returns ``(key, created)``.

    Idempotent: the same key again changes nothing. A new key for a known node retires the
    node's previous key (kept and still published, as a rotation keeps it). The row holds no
    private half. Raises ValueError for a JWK that is not a public Ed25519 key, or a kid
    already taken by another key.
    """
    if node == settings.NODE_ID:
        raise ValueError("a node's own key is created by the node, not registered")
    if not isinstance(public_jwk, dict) or "d" in public_jwk:
        raise ValueError("expected a public JWK (a JSON object without 'd')")
    if public_jwk.get("kty") != "OKP" or public_jwk.get("crv") != "Ed25519":
        raise ValueError("the node key must be an OKP key on Ed25519")
    kid = public_jwk.get("kid")
    if not isinstance(kid, str) or not 1 <= len(kid) <= 100:
        raise ValueError("the JWK needs a 'kid' of 1 to 100 characters")
    try:
        key = OKPKey.import_key({k: v for k, v in public_jwk.items() if k in ("kty", "crv", "x", "kid")})
    except Exception as exc:
        raise ValueError(f"not a usable Ed25519 public key: {exc}") from exc
    public = {**key.as_dict(private=False), "use": "sig", "alg": ALG}
    with transaction.atomic():
        existing = SigningKey.objects.select_for_update().filter(kid=kid).first()
        if existing is not None:
            if existing.node != node or existing.public_jwk.get("x") != public.get("x"):
                raise ValueError(f"kid {kid!r} is already registered for another key")
            return existing, False
        SigningKey.objects.filter(node=node, retired_at__isnull=True).update(retired_at=timezone.now())
        return SigningKey.objects.create(kid=kid, node=node, private_jwk={}, public_jwk=public), True


def jws_sign(*, payload: dict, typ: str) -> tuple[str, str]:
    """Sign ``payload`` with this node's current key as a JWS compact token whose protected
    header is ``{"alg": "EdDSA", "kid", "typ": typ}``; return ``(token, kid)``. No size limit
    of its own (a sync batch is bounded by the receiver). No network I/O."""
    body = json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False).encode()
    loaded = _current_key_loaded(settings.NODE_ID)
    return _compact(loaded, body, typ), loaded.kid


def _compact(loaded: _LoadedKey, body: bytes, typ: str) -> str:
    header = json.dumps({"alg": ALG, "kid": loaded.kid, "typ": typ}, separators=(",", ":")).encode()
    signing_input = _b64url(header) + b"." + _b64url(body)
    signature = loaded.key.get_op_key("sign").sign(signing_input)
    return (signing_input + b"." + _b64url(signature)).decode("ascii")


def receipt_sign(*, payload: dict) -> str:
    """Sign ``payload`` as a receipt and return the JWS compact token (RFC 7515), protected
    header ``{"alg": "EdDSA", "kid": <current kid>, "typ": "receipt+jws"}``.

    Preconditions: ``payload`` is a dict that serializes to JSON (``Decimal``, dates and
    UUIDs become strings, as in the outbox). No network I/O. With a warm cache no query
    runs; otherwise one indexed read, plus the key's creation on the node's first receipt,
    in the caller's transaction if there is one.
    """
    if not isinstance(payload, dict):
        raise TypeError("a receipt payload is a JSON object (dict)")
    body = json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False).encode()
    # Verifiers (joserfc's included) refuse oversized payloads; never issue a receipt that
    # cannot be verified. Base64url grows the body by a third.
    if (len(body) * 4 + 2) // 3 > _SIGN_REGISTRY.max_payload_length:
        raise ValueError(f"receipt payload of {len(body)} bytes is too large to sign")
    return _compact(_current_key_loaded(settings.NODE_ID), body, TYP)


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")
