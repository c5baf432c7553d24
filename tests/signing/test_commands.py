"""rotate_receipt_key and verify_receipt, as an operator runs them."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError

from creatorcommerce.signing.models import SigningKey
from creatorcommerce.signing.services import receipt_sign, signing_key_current

from .conftest import b64, unb64

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_rotate_prints_the_new_and_the_retired_kid(settings):
    old = signing_key_current()

    output = _run("rotate_receipt_key")

    new = SigningKey.objects.get(node=settings.NODE_ID, retired_at__isnull=True)
    assert f"current key: {new.kid}" in output
    assert f"retired key: {old.kid}" in output


def test_rotate_on_a_node_without_a_key(settings):
    output = _run("rotate_receipt_key")

    assert "retired key: (none" in output
    assert SigningKey.objects.filter(node=settings.NODE_ID).count() == 1


def test_verify_prints_header_and_payload(receipt_payload):
    token = receipt_sign(payload=receipt_payload)

    printed = json.loads(_run("verify_receipt", token))

    assert printed["header"] == {"alg": "EdDSA", "kid": signing_key_current().kid, "typ": "receipt+jws"}
    assert printed["payload"]["order"] == 42 and printed["payload"]["total"] == "25.00"


def test_receipt_signed_before_rotation_verifies_with_the_command_after(receipt_payload):
    token = receipt_sign(payload=receipt_payload)
    _run("rotate_receipt_key")
    _run("rotate_receipt_key")

    assert json.loads(_run("verify_receipt", token))["payload"]["order"] == 42


def test_verify_refuses_a_tampered_receipt(receipt_payload):
    header, payload, signature = receipt_sign(payload=receipt_payload).split(".")
    tampered = json.loads(unb64(payload)) | {"total": "0.01"}

    with pytest.raises(CommandError, match=r"invalid_receipt \(signature\)"):
        _run("verify_receipt", f"{header}.{b64(tampered)}.{signature}")


def test_verify_reads_the_token_from_stdin(receipt_payload, monkeypatch):
    token = receipt_sign(payload=receipt_payload)
    monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))

    assert json.loads(_run("verify_receipt", "-"))["payload"]["order"] == 42


# The exit codes, through the same entry point as manage.py. It closes the database
# connection when done, so each test does all its database work before.


def test_verify_exits_0_on_a_genuine_receipt(receipt_payload, capsys):
    token = receipt_sign(payload=receipt_payload)

    execute_from_command_line(["manage.py", "verify_receipt", token])  # returns: exit status 0

    assert json.loads(capsys.readouterr().out)["payload"]["order"] == 42


def test_verify_exits_1_on_a_forged_receipt(receipt_payload, capsys):
    header, payload, _signature = receipt_sign(payload=receipt_payload).split(".")
    forged = f"{b64(json.loads(unb64(header)) | {'alg': 'none'})}.{payload}."

    with pytest.raises(SystemExit) as excinfo:
        execute_from_command_line(["manage.py", "verify_receipt", forged])

    assert excinfo.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "invalid_receipt (alg)" in captured.err
