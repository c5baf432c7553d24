"""Event shapes as contracts (docs/events.md): the checkers, and emit() refusing an
undeclared type or a payload that does not match its declared schema."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction

from creatorcommerce.spine.event_schema import (
    BOOL,
    DATETIME,
    DECIMAL,
    INT,
    STR,
    EventSchemaError,
    ListOf,
    Nullable,
    Obj,
    OneOf,
    check,
    declare,
    declared_types,
    undeclare,
)
from creatorcommerce.spine.events import emit
from creatorcommerce.spine.models import OutboxEvent

SHAPE = Obj(
    n=INT,
    price=DECIMAL,
    at=DATETIME,
    ok=BOOL,
    name=Nullable(STR),
    kind=OneOf("a", "b"),
    lines=ListOf(Obj(sku=STR, quantity=INT)),
)
GOOD = {
    "n": 1,
    "price": "9.90",
    "at": "2026-01-01T20:00:00Z",
    "ok": True,
    "name": None,
    "kind": "a",
    "lines": [{"sku": "MUG", "quantity": 2}],
}


@pytest.fixture
def declared():
    declare("test.shaped", SHAPE)
    yield
    undeclare("test.shaped")


def test_a_matching_payload_passes(declared):
    check("test.shaped", GOOD)
    check("test.shaped", {**GOOD, "name": "Ada", "lines": [], "price": "-3"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n": "1"}, "test.shaped.n must be an integer"),
        ({"n": True}, "test.shaped.n must be an integer"),
        ({"price": 9.9}, "test.shaped.price must be a decimal as a string"),
        ({"price": "9,90"}, "test.shaped.price must be a decimal as a string"),
        ({"at": "yesterday"}, "test.shaped.at must be an ISO 8601 date and time"),
        ({"at": "2026-01-01T20:00:00"}, "test.shaped.at must be an ISO 8601 date and time"),
        ({"at": "2026-01-01T21:00:00+01:00"}, "test.shaped.at must be an ISO 8601 date and time in UTC"),
        ({"ok": 1}, "test.shaped.ok must be true or false"),
        ({"name": 5}, "test.shaped.name must be a string"),
        ({"kind": "c"}, "test.shaped.kind must be one of"),
        ({"lines": {"sku": "MUG"}}, "test.shaped.lines must be a list"),
        ({"lines": [{"sku": "MUG", "quantity": "2"}]}, r"test.shaped.lines\[0\].quantity must be an integer"),
        ({"lines": [{"sku": "MUG"}]}, r"test.shaped.lines\[0\] has missing keys \['quantity'\]"),
        ({"extra": 1}, r"test.shaped has missing keys \[\] and unexpected keys \['extra'\]"),
    ],
)
def test_a_payload_that_does_not_match_names_the_key(declared, change, message):
    with pytest.raises(EventSchemaError, match=message):
        check("test.shaped", {**GOOD, **change})


def test_a_missing_key_is_refused(declared):
    payload = dict(GOOD)
    del payload["n"]
    with pytest.raises(EventSchemaError, match=r"missing keys \['n'\]"):
        check("test.shaped", payload)


def test_an_event_type_is_declared_once(declared):
    declare("test.shaped", SHAPE)  # the same schema again (a module imported twice): fine
    with pytest.raises(ValueError, match="declared twice"):
        declare("test.shaped", Obj(n=INT))


@pytest.mark.django_db
def test_emit_refuses_an_undeclared_type_or_a_mismatched_payload_and_records_nothing(settings, declared):
    settings.SPINE_CHECK_EVENTS = True
    with pytest.raises(EventSchemaError, match=r"test\.unknown has no declared schema"), transaction.atomic():
        emit("test.unknown", {})
    with pytest.raises(EventSchemaError, match=r"test\.shaped\.n must be an integer"), transaction.atomic():
        emit("test.shaped", {**GOOD, "n": "one"})
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db
def test_emit_checks_the_json_form_of_the_payload(settings, declared):
    """A Decimal is stored (and shipped) as a string: that is what the schema describes."""
    settings.SPINE_CHECK_EVENTS = True
    with transaction.atomic():
        event = emit("test.shaped", {**GOOD, "price": Decimal("9.90")})
    assert event.payload["price"] == "9.90"


@pytest.mark.django_db
def test_with_checking_off_emit_does_not_look_at_the_shape(settings):
    settings.SPINE_CHECK_EVENTS = False
    with transaction.atomic():
        emit("test.unknown", {"anything": 1})
    assert OutboxEvent.objects.get().type == "test.unknown"


def test_every_declared_event_is_listed_in_docs_events_md():
    """docs/events.md is what other nodes (and their authors) read: no event left out."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("### ")]
    listed = {name for line in headings for name in re.findall(r"`([a-z_]+\.[a-z_]+)`", line)}
    declared = {t for t in declared_types() if not t.startswith("test.")}
    assert declared - listed == set(), "declared but not in docs/events.md"
    assert listed - declared == set(), "in docs/events.md but not declared"
