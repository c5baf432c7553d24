"""The node's signing key: created on first use, rotated atomically, one current at a time;
receipts signed with it, fast, from an in-process cache."""

from __future__ import annotations

import re
import threading

import pytest
from django.db import IntegrityError, connection, transaction

from creatorcommerce.signing import services
from creatorcommerce.signing.models import SigningKey
from creatorcommerce.signing.selectors import receipt_verify
from creatorcommerce.signing.services import (
    receipt_sign,
    signing_key_current,
    signing_key_rotate,
)

from .conftest import token_parts

pytestmark = pytest.mark.django_db


def test_key_created_on_first_use_with_a_kid(settings):
    assert not SigningKey.objects.exists()

    key = signing_key_current()

    assert re.fullmatch(rf"{settings.NODE_ID}-\d{{8}}-[0-9a-f]{{6}}", key.kid)
    assert key.node == settings.NODE_ID
    assert key.retired_at is None
    assert key.public_jwk["kid"] == key.kid
    assert key.public_jwk["kty"] == "OKP" and key.public_jwk["crv"] == "Ed25519"
    assert "d" not in key.public_jwk and "d" in key.private_jwk
    # A second use returns the same key instead of making another.
    assert signing_key_current().pk == key.pk
    assert SigningKey.objects.count() == 1


def test_receipt_header_is_exactly_alg_kid_typ(receipt_payload):
    token = receipt_sign(payload=receipt_payload)

    header, payload, _signature = token_parts(token)
    assert header == {"alg": "EdDSA", "kid": signing_key_current().kid, "typ": "receipt+jws"}
    # Decimals travel as strings, as in the outbox, so no float rounding reaches a receipt.
    assert payload["total"] == "25.00"
    assert receipt_verify(token=token) == payload


def test_rotation_retires_the_current_key_and_creates_a_new_one():
    first = signing_key_current()

    new, retired = signing_key_rotate()

    assert retired.pk == first.pk
    retired.refresh_from_db()
    assert retired.retired_at is not None
    assert new.retired_at is None and new.kid != first.kid
    assert signing_key_current().pk == new.pk


def test_rotation_on_a_node_without_a_key_just_creates_one():
    new, retired = signing_key_rotate(node="node-fresh")

    assert retired is None
    assert SigningKey.objects.get(node="node-fresh").pk == new.pk


def test_only_one_current_key_after_two_rotations(settings):
    signing_key_current()
    signing_key_rotate()
    signing_key_rotate()

    keys = SigningKey.objects.filter(node=settings.NODE_ID)
    assert keys.count() == 3
    assert keys.filter(retired_at__isnull=True).count() == 1


def test_database_refuses_a_second_current_key(settings):
    signing_key_current()
    with pytest.raises(IntegrityError), transaction.atomic():
        SigningKey.objects.create(kid="forged", node=settings.NODE_ID, private_jwk={}, public_jwk={})


def test_keys_of_other_nodes_do_not_interfere():
    mine = signing_key_current()
    theirs = signing_key_current(node="node-other")

    assert mine.pk != theirs.pk
    assert SigningKey.objects.filter(retired_at__isnull=True).count() == 2


def test_sign_uses_the_cached_key_without_a_query(
    receipt_payload, django_capture_on_commit_callbacks, django_assert_num_queries
):
    with django_capture_on_commit_callbacks(execute=True):
        receipt_sign(payload=receipt_payload)

    with django_assert_num_queries(0):
        receipt_sign(payload=receipt_payload)


def test_rotation_in_this_process_switches_signing_at_once(receipt_payload, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        before = token_parts(receipt_sign(payload=receipt_payload))[0]["kid"]
    with django_capture_on_commit_callbacks(execute=True):
        new, _retired = signing_key_rotate()

    after = token_parts(receipt_sign(payload=receipt_payload))[0]["kid"]
    assert after == new.kid != before


def test_rotation_by_another_process_is_picked_up_after_the_ttl(
    receipt_payload, django_capture_on_commit_callbacks, monkeypatch
):
    with django_capture_on_commit_callbacks(execute=True):
        old_kid = token_parts(receipt_sign(payload=receipt_payload))[0]["kid"]
    # Another process rotates: its commit does not reach this process's cache.
    new, _retired = signing_key_rotate()

    stale = receipt_sign(payload=receipt_payload)
    assert token_parts(stale)[0]["kid"] == old_kid
    assert receipt_verify(token=stale)["order"] == 42  # the retired key still verifies

    clock = services.time.monotonic() + services.CURRENT_KEY_TTL + 1
    monkeypatch.setattr(services.time, "monotonic", lambda: clock)
    assert token_parts(receipt_sign(payload=receipt_payload))[0]["kid"] == new.kid


def test_key_created_in_a_rolled_back_transaction_is_not_cached(receipt_payload, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                doomed = token_parts(receipt_sign(payload=receipt_payload))[0]["kid"]
                raise RuntimeError("the order failed")
        except RuntimeError:
            pass

    assert not SigningKey.objects.filter(kid=doomed).exists()
    token = receipt_sign(payload=receipt_payload)
    assert token_parts(token)[0]["kid"] != doomed
    assert receipt_verify(token=token)["order"] == 42


def test_sign_refuses_a_non_dict_payload():
    with pytest.raises(TypeError):
        receipt_sign(payload=["not", "an", "object"])


def test_sign_refuses_a_payload_no_verifier_would_accept():
    with pytest.raises(ValueError, match="too large"):
        receipt_sign(payload={"blob": "x" * 200_000})


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_use_ends_with_one_current_key():
    node = "node-race"
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    kids: list[str] = []
    errors: list[BaseException] = []

    def first_use():
        try:
            barrier.wait(timeout=10)
            kids.append(signing_key_current(node=node).kid)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first_use) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(kids) == threads_count and len(set(kids)) == 1
    assert SigningKey.objects.filter(node=node).count() == 1
    assert SigningKey.objects.filter(node=node, retired_at__isnull=True).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_rotations_all_succeed_with_one_current_key():
    node = "node-rotate-race"
    signing_key_current(node=node)
    threads_count = 4
    barrier = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def rotate():
        try:
            barrier.wait(timeout=10)
            signing_key_rotate(node=node)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=rotate) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert SigningKey.objects.filter(node=node).count() == 1 + threads_count
    assert SigningKey.objects.filter(node=node, retired_at__isnull=True).count() == 1
