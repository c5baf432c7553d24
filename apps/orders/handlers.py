"""Spine handlers of the orders app."""

from creatorcommerce.spine.registry import handler

from .services import order_capture


@handler("order.placed", name="apps.orders.handlers.capture_payment", atomic=False)
def capture_payment(event):
    """Capture the authorised payment of a confirmed order (gateway I/O: no transaction)."""
    order_capture(order_id=event.payload["order"])
