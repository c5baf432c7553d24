"""Declared shapes of events: each event type's payload is a contract (docs/events.md).

Modelled on Zulip's ``zerver/lib/event_schema.py``: a few plain checkers composed into one
schema per event type, strict about keys (a missing or an extra key is an error), checked
against the payload as it is stored and shipped, i.e. after the JSON round trip (a Decimal
is a string by then). Apps declare their events in ``<app>/events.py``, which the spine
imports at startup as it does ``handlers.py``::

    from creatorcommerce.spine.event_schema import INT, STR, Obj, declare

    declare("address.updated", Obj(user=INT))

``emit()`` checks every payload when ``SPINE_CHECK_EVENTS`` is on (tests, DEBUG): an
undeclared type or a payload that does not match raises ``EventSchemaError``. Plain Python,
no library: the checkers are a page, and a schema library (pydantic, jsonschema) would cost
more per emit and add nothing the events need.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

# A checker takes the value and the path to it (for the message), and raises on a mismatch.
Checker = Callable[[object, str], None]


class EventSchemaError(ValueError):
    """A payload that is not what its event type declares, or an undeclared event type."""


def _fail(path: str, expected: str, value: object) -> None:
    raise EventSchemaError(f"{path} must be {expected}, not {value!r}")


def _int(value: object, path: str) -> None:
    if type(value) is not int:  # bool is an int subclass, and not an int here
        _fail(path, "an integer", value)


def _str(value: object, path: str) -> None:
    if not isinstance(value, str):
        _fail(path, "a string", value)


def _bool(value: object, path: str) -> None:
    if not isinstance(value, bool):
        _fail(path, "true or false", value)


_DECIMAL_RE = re.compile(r"^-?\d+(\.\d+)?$")


def _decimal(value: object, path: str) -> None:
    if not isinstance(value, str) or not _DECIMAL_RE.match(value):
        _fail(path, "a decimal as a string (e.g. '19.99')", value)


def _datetime(value: object, path: str) -> None:
    if not isinstance(value, str):
        _fail(path, "an ISO 8601 date and time in UTC (e.g. '2026-01-01T20:00:00Z')", value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.utcoffset() is None or parsed.utcoffset().total_seconds() != 0:
        _fail(path, "an ISO 8601 date and time in UTC (e.g. '2026-01-01T20:00:00Z')", value)


INT: Checker = _int
STR: Checker = _str
BOOL: Checker = _bool
DECIMAL: Checker = _decimal
DATETIME: Checker = _datetime


def Nullable(inner: Checker) -> Checker:
    def check(value: object, path: str) -> None:
        if value is not None:
            inner(value, path)

    return check


def OneOf(*choices: str) -> Checker:
    allowed = frozenset(choices)

    def check(value: object, path: str) -> None:
        if value not in allowed:
            _fail(path, f"one of {sorted(allowed)}", value)

    return check


def ListOf(inner: Checker) -> Checker:
    def check(value: object, path: str) -> None:
        if not isinstance(value, list):
            _fail(path, "a list", value)
        for index, item in enumerate(value):
            inner(item, f"{path}[{index}]")

    return check


class Obj:
    """A JSON object with exactly these keys (each with its checker)."""

    def __init__(self, **keys: Checker):
        self.keys = keys

    def __call__(self, value: object, path: str) -> None:
        if not isinstance(value, dict):
            _fail(path, "an object", value)
        if value.keys() != self.keys.keys():
            missing = sorted(self.keys.keys() - value.keys())
            extra = sorted(value.keys() - self.keys.keys())
            raise EventSchemaError(f"{path} has missing keys {missing} and unexpected keys {extra}")
        for key, checker in self.keys.items():
            checker(value[key], f"{path}.{key}")


_schemas: dict[str, Obj] = {}


def declare(event_type: str, schema: Obj) -> None:
    """Declare the payload of ``event_type``, once (a second, different declaration is a
    mistake: two apps would be claiming one event)."""
    existing = _schemas.get(event_type)
    if existing is not None and existing is not schema:
        raise ValueError(f"{event_type} is declared twice")
    _schemas[event_type] = schema


def undeclare(event_type: str) -> None:
    """Remove a declaration (tests declare throwaway event types)."""
    _schemas.pop(event_type, None)


def schema_for(event_type: str) -> Obj | None:
    return _schemas.get(event_type)


def declared_types() -> list[str]:
    return sorted(_schemas)


def check(event_type: str, payload: object) -> None:
    """Raise EventSchemaError unless ``event_type`` is declared and ``payload`` (its JSON
    form) matches its schema."""
    schema = _schemas.get(event_type)
    if schema is None:
        raise EventSchemaError(f"{event_type} has no declared schema (declare it in its app's events.py)")
    schema(payload, event_type)
