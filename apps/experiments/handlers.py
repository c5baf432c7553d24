"""Spine handlers of the experiments app: conversions (docs/experiments.md, "Measurement")."""

from creatorcommerce.spine.registry import handler

from .services import conversion_record


@handler("order.placed", name="apps.experiments.handlers.conversions_on_order_placed")
def conversions_on_order_placed(event):
    conversion_record(payload=event.payload, at=event.created_at)
