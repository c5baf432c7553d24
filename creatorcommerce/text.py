"""The one rule for free text a person types: no control characters, no bidi overrides.

Control characters (C0 and C1) have no place in a name, a title or an address, and they
break what shows them (terminals, CSV exports, logs). The bidirectional embedding, override
and isolate characters (U+202A to U+202E, U+2066 to U+2069) make text display in another order
than it is stored: "Trojan Source" tricks on a product title or a shipping address. Multi-line
text may still hold line breaks and tabs.

Applied centrally: every API input string is a ``StrictCharField`` (creatorcommerce/fields.py)
and every admin text field gets it from ``AdminSite.register`` (creatorcommerce/admin.py). The
code of the error is ``invalid_text``.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

_BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
_SINGLE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI_CONTROLS}]")
_MULTI_LINE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI_CONTROLS}]")  # \t \n \r allowed


def forbidden_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character of ``value`` that free text may not hold, or None."""
    match = (_MULTI_LINE if multiline else _SINGLE_LINE).search(value)
    return match.group() if match else None


@deconstructible
class TextValidator:
    """Django/DRF validator: refuses control and bidirectional-override characters."""

    code = "invalid_text"

    def __init__(self, *, multiline: bool = False):
        self.multiline = multiline

    def __call__(self, value):
        if not isinstance(value, str):
            return
        char = forbidden_character(value, multiline=self.multiline)
        if char is not None:
            raise ValidationError(
                "Text may not contain control or bidirectional-override characters (found U+%(cp)04X).",
                code=self.code,
                params={"cp": ord(char)},
            )

    def __eq__(self, other):
        return isinstance(other, TextValidator) and other.multiline == self.multiline
