"""Spine handlers of the experiments app: conversions (docs/experiments.md, "Measurement").

Without a running experiment a buy enqueues nothing for this app: ``wants`` says no when the
process's copy of the running experiments is fresh and empty (a check in memory; a stale
copy says yes and the handler finds nothing to count)."""

from creatorcommerce.spine.registry import handler

from .assignment import may_be_running
from .services import conversion_record


def _wants(event_type: str) -> bool:
    return may_be_running()


@handler("order.placed", name="apps.experiments.handlers.conversions_on_order_placed", wants=_wants)
def conversions_on_order_placed(event):
    conversion_record(payload=event.payload, at=event.created_at)
