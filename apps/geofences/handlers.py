"""Spine handlers of the geofences app."""

from creatorcommerce.spine.events import emit
from creatorcommerce.spine.registry import handler

from .fence_cache import bump_generation


@handler("venue.updated", "venue.deleted", "geo_offer.created", "geo_offer.updated")
def venues_changed(event) -> None:
    """Wherever the event is handled (a worker, or another node once events are synced),
    bump the fence cache's generation so that every process reloads its venues
    (docs/geofences.md, "Fence cache"). A redelivery bumps again: one extra reload, no harm."""
    bump_generation()


# -- running-time coupons (docs/geofences.md) ----------------------------------------


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
