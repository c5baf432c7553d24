"""The geofences app's events and their payloads (docs/events.md;
creatorcommerce/spine/event_schema.py)."""

from creatorcommerce.spine.event_schema import DATETIME, INT, Obj, declare

# -- running-time coupons (docs/geofences-coupons.md) ----------------------------------------

# A coupon issued on entering or dwelling at a venue (``coupons.coupons_issue``).
declare(
    "coupon.issued",
    Obj(coupon=INT, offer=INT, venue=INT, shop=INT, user=INT, issued_at=DATETIME, expires_at=DATETIME),
)
# Its order was paid (``handlers.coupon_redeemed``, on ``order.placed``).
declare("coupon.redeemed", Obj(coupon=INT, offer=INT, shop=INT, user=INT, order=INT))
# Its reservation was released (declined, failed, expired): usable again.
declare("coupon.returned", Obj(coupon=INT, offer=INT, shop=INT, user=INT))
for kind in ("created", "updated"):
    declare(f"geo_offer.{kind}", Obj(offer=INT, shop=INT, venue=INT))
