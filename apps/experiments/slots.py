"""The micro-interaction slots an experiment can vary, each with its standard experience and
the variants it may try instead (docs/experiments.md, "Slots").

``control`` is every slot's standard experience: the storefront and the device cues render
``"control"`` exactly as they do without any experiment. A slot's ``unit`` says who is
assigned: a viewer, or (``led_urgency_cue``) a stream as a whole. An experiment's variants are
``control`` and one or more of the slot's ``variants``.

Variant payloads: a variant rendered from data of another app has a provider registered
for the slot here (docs/experiments.md, "Slot providers"). ``pin_order``'s ``personal``
variant is the personalisation app's ranker (apps/experiments/providers.py)::

    from apps.experiments.slots import variant_payload

    @variant_payload("pin_order")
    def personal_pins(*, viewer, variant):  # apps.streams.extras.Viewer, "personal"
        return {"pin_order": rank_pins(...)}   # fields added to that viewer's snapshot

A provider runs in the snapshot's thread, for viewers whose variant is not ``control``
only, and may return None (the client then keeps the standard order).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

CONTROL = "control"


VIEWER, STREAM = "viewer", "stream"


@dataclass(frozen=True)
class Slot:
    key: str
    label: str
    standard: str  # what "control" renders, in the slot's own terms
    variants: tuple[str, ...]  # what an experiment may try instead
    # Who is assigned a variant: each viewer (the storefront renders it for them), or each
    # stream as a whole (a micro-interaction of the stream's room that every viewer shares:
    # docs/experiments.md, "Stream-level slots").
    unit: str = VIEWER


SLOTS: dict[str, Slot] = {
    s.key: s
    for s in (
        Slot("purchase_confirmation", "Purchase confirmation", "toast", ("confetti", "toast", "none")),
        Slot("social_proof_ticker", "Social-proof ticker", "on", ("on", "off")),
        Slot("stock_urgency_badge", "Stock urgency badge", "on", ("on", "off")),
        Slot("led_urgency_cue", "LED urgency cue", "on", ("on", "off"), unit=STREAM),
        Slot("badge_pops", "Badge pops", "on", ("on", "off")),
        Slot("pin_order", "Pin order", "creator", ("creator", "personal")),
    )
}
SLOT_CHOICES = [(s.key, s.label) for s in SLOTS.values()]

_providers: dict[str, Callable] = {}


def variant_payload(slot: str) -> Callable:
    """Register ``fn(*, viewer, variant) -> dict | None`` for ``slot``'s non-control variants."""
    if slot not in SLOTS:
        raise ValueError(f"unknown slot {slot!r}")

    def register(fn: Callable) -> Callable:
        _providers[slot] = fn
        return fn

    return register


def payload_for(slot: str, *, viewer, variant: str) -> dict:
    """What ``slot``'s provider adds to the snapshot for ``variant`` ({} without one, for
    control, or when the provider fails: the standard experience)."""
    fn = _providers.get(slot)
    if fn is None or variant == CONTROL:
        return {}
    try:
        return fn(viewer=viewer, variant=variant) or {}
    except Exception:
        log.exception("variant payload of %s failed", slot)
        return {}


def has_provider(slot: str) -> bool:
    return slot in _providers
