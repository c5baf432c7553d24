"""Scheduling panels: what apps above streams show on a drop's admin page while it is being
scheduled (docs/streams.md). The streams app imports none of them (they sit above it in the
layers, docs/architecture.md); each registers, from its ``AppConfig.ready``, a function
``panel(request, shop, stream) -> str | None`` (safe HTML, or None for nothing)::

    @scheduling_panel
    def audience(request, shop, stream): ...

``shop`` is the drop's shop (None on a staff member's add page, where no shop is picked
yet); ``stream`` is None on the add page. The admin renders them under the form's fields,
in the order registered (``templates/admin/streams/stream/change_form.html``).
"""

from __future__ import annotations

from collections.abc import Callable

_panels: list[Callable] = []


def scheduling_panel(fn: Callable) -> Callable:
    if fn not in _panels:
        _panels.append(fn)
    return fn


def scheduling_panels(*, request, shop, stream) -> list[str]:
    """The HTML of every registered panel that has something to show."""
    out = []
    for panel in _panels:
        html = panel(request, shop, stream)
        if html:
            out.append(html)
    return out


# -- the control room -------------------------------------------------------------------------
#
# Apps above streams add to the creator's control room (``/streams/<id>/control/``) the same
# way (docs/streams.md, "Control-room panels"): a panel ``panel(request, stream) -> str |
# None`` (safe HTML, rendered under the room's own panels; it may carry its own script,
# which hears the room's socket through ``control:message`` DOM events on ``#control``), and
# relays that turn their spine events, delivered to ``control.<stream>`` or to every control
# room of the shop (``shop_control_groups``), into the socket's messages. A relay
# ``relay(message) -> dict | None`` gets the channel message (``type``, ``payload``,
# ``created_at``) and runs on the socket's event loop: it must not touch the database.

_control_panels: list[Callable] = []
_control_relays: dict[str, Callable] = {}


def control_panel(fn: Callable) -> Callable:
    if fn not in _control_panels:
        _control_panels.append(fn)
    return fn


def control_panels(*, request, stream) -> list[str]:
    out = []
    for panel in _control_panels:
        html = panel(request, stream)
        if html:
            out.append(html)
    return out


def control_relay(*event_types: str) -> Callable:
    """Register ``relay`` for spine events of ``event_types`` reaching a control room."""

    def register(fn: Callable) -> Callable:
        for event_type in event_types:
            _control_relays[event_type] = fn
        return fn

    return register


def control_relay_for(event_type: str) -> Callable | None:
    return _control_relays.get(event_type)
