"""Serializer fields that refuse wrong JSON types instead of coercing them.

DRF's CharField turns 5 into "5" and IntegerField turns "5" into 5; the contract says wrong
types are a 400, so API serializers use these.

``StrictCharField`` is also where the API applies the free-text rule (creatorcommerce/text.py):
no control or bidirectional-override characters; ``multiline=True`` allows line breaks and tabs.
"""

from datetime import UTC

from rest_framework import serializers

from .text import TextValidator


class StrictCharField(serializers.CharField):
    default_error_messages = {"type": "Expected a string."}

    def __init__(self, *, multiline: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(TextValidator(multiline=multiline))

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("type")
        return super().to_internal_value(data)


# The largest value a database integer column holds (PostgreSQL bigint, SQLite INTEGER):
# past it a look-up raised OverflowError in the driver (a 500) instead of finding nothing.
MAX_DB_INTEGER = 2**63 - 1


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"type": "Expected an integer."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_value", MAX_DB_INTEGER)
        kwargs.setdefault("min_value", -MAX_DB_INTEGER)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("type")
        return super().to_internal_value(data)


class StrictDecimalField(serializers.DecimalField):
    """Accepts a JSON number or a numeric string ("19.99"); refuses booleans and objects."""

    default_error_messages = {"type": "Expected a decimal number or a numeric string."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float, str)):
            self.fail("type")
        return super().to_internal_value(data)


def iso_utc(value):
    """``value`` (an aware datetime, in whatever zone a form or the active time zone left it)
    as the wire format of the API and the events: ISO 8601 in UTC with a ``Z``
    (docs/events.md). A time typed by a creator in Berlin arrives as ``+01:00``: converted,
    not relabelled."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
