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
