"""Variant payloads this app serves itself (docs/experiments.md, "Slot providers").

``pin_order: personal``: the stream's pins in the order the personalisation app's
co-purchase model ranks them for the viewer (``apps.personalization.ranker.rank_pins``, in
memory; docs/personalization.md). The personalisation app sits below this one in the layers,
so the provider lives here and imports it. A viewer the model knows nothing about (anonymous,
no history in the shop, no model yet) gets the creator's order.
"""

from __future__ import annotations

from apps.personalization.ranker import rank_pins
from apps.streams.models import Pin

from .slots import variant_payload


@variant_payload("pin_order")
def personal_pin_order(*, viewer, variant: str) -> dict | None:
    if variant != "personal":
        return None  # "creator": the standard order, nothing to add
    codes = list(Pin.objects.filter(stream_id=viewer.stream_id).values_list("sku__code", flat=True))
    return {"pin_order": rank_pins(viewer.shop_id, viewer.user_id, codes)}
