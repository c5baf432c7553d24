"""What each cue kind takes as ``params`` (docs/devices.md, "Cue kinds"). Every key is
optional; unknown keys, wrong types and values out of range are refused."""

from __future__ import annotations

import re

from .exceptions import InvalidCue

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def _int(low: int, high: int):
    def check(value):
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    check.describe = f"an integer from {low} to {high}"
    return check


def _color(value):
    return isinstance(value, str) and bool(_COLOR.match(value))


_color.describe = 'a colour "#rrggbb"'


def _one_of(*choices):
    def check(value):
        return value in choices

    check.describe = "one of " + ", ".join(choices)
    return check


def _label(value):
    return isinstance(value, str) and 0 < len(value) <= 64


_label.describe = "a name of 1 to 64 characters"

KIND_PARAMS = {
    "pulse": {"color": _color, "duration_ms": _int(50, 10_000), "count": _int(1, 20)},
    "flash": {"color": _color, "duration_ms": _int(50, 10_000), "count": _int(1, 20)},
    "urgency": {"level": _int(1, 3), "duration_ms": _int(50, 60_000), "color": _color},
    "tap": {"pattern": _one_of("short", "long", "double"), "count": _int(1, 5)},
    "route": {"input": _label, "output": _label},
}


# The cue kinds each kind of device plays (the control room offers these as buttons; the
# server itself sends any kind to any device, docs/devices.md, "Cue kinds").
KINDS_BY_DEVICE = {
    "led_strip": ("pulse", "flash", "urgency"),
    "light": ("pulse", "flash", "urgency"),
    "haptic": ("tap",),
    "mic_router": ("route",),
}


def check_params(kind: str, params) -> dict:
    """``params`` if ``kind`` takes them, else ``InvalidCue`` naming the key at fault."""
    checks = KIND_PARAMS.get(kind)
    if checks is None:
        raise InvalidCue(f"Unknown cue kind {kind!r}.", code="invalid_cue_kind", field="kind")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise InvalidCue("params must be an object.", code="invalid_cue_params", field="params")
    for key, value in params.items():
        check = checks.get(key)
        if check is None:
            allowed = ", ".join(checks)
            raise InvalidCue(
                f"A {kind} cue takes no {key!r} (it takes {allowed}).", code="invalid_cue_params", field=key
            )
        if not check(value):
            raise InvalidCue(f"{key} must be {check.describe}.", code="invalid_cue_params", field=key)
    return dict(params)
