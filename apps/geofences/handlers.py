"""Spine handlers of the geofences app."""

from creatorcommerce.spine.events import emit
from creatorcommerce.spine.registry import handler

# -- running-time coupons (docs/geofences-coupons.md) ----------------------------------------


@handler("order.placed", name="apps.geofences.handlers.coupon_redeemed")
def coupon_redeemed(event):
    """Record the paid order on the coupons it redeemed (``Order.redemptions``) and emit
    ``coupon.redeemed``. Idempotent: a coupon that names its order already is left alone."""
    from apps.orders.models import Order

    from .coupons import coupon_event_payload
    from .models import Coupon

    order_id = event.payload["order"]
    redemptions = Order.objects.filter(pk=order_id).values_list("redemptions", flat=True).first() or []
    ids = [int(target) for source, _, target in (r.partition(":") for r in redemptions) if source == "coupon"]
    for coupon in Coupon.objects.select_related("offer").filter(pk__in=ids, order__isnull=True):
        if Coupon.objects.filter(pk=coupon.pk, order__isnull=True).update(order_id=order_id):
            emit(
                "coupon.redeemed",
                coupon_event_payload(coupon, order_id=order_id),
                groups=[f"shop.{coupon.offer.shop_id}"],
            )
