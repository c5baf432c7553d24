"""Spine handlers of the loyalty app: the badges' rules (``rules.py``) on commerce events
(docs/loyalty.md, "Badges and rules").

Each runs in one transaction with the record of its run (``apply_handler``), so a
redelivered event is applied once; and every award is once per badge, viewer and scope by
the Award unique constraint, whatever runs twice or at once. ``order.refunded`` has no
handler: refunds never revoke on their own (staff do, with a reason), and every rule counts
paid orders only, so a refunded order earns nothing from then on.
"""

from django.utils import timezone

from creatorcommerce.spine.registry import handler

from . import rules


@handler("order.placed", name="apps.loyalty.handlers.badges_on_order_placed")
def badges_on_order_placed(event):
    rules.on_order_placed(payload=event.payload, at=event.created_at, now=timezone.now())


@handler("deal.opened", name="apps.loyalty.handlers.badges_on_deal_opened")
def badges_on_deal_opened(event):
    rules.on_deal_opened(payload=event.payload, at=event.created_at, now=timezone.now())


@handler("stream.ended", name="apps.loyalty.handlers.badges_on_stream_ended")
def badges_on_stream_ended(event):
    rules.on_stream_ended(payload=event.payload, now=timezone.now())
