"""The geofences' events (docs/events.md; creatorcommerce/spine/event_schema.py)."""

from creatorcommerce.spine.event_schema import BOOL, DATETIME, INT, Nullable, Obj, declare

# A venue created or changed (fence, hours, announcement, active...), at its new version.
declare("venue.updated", Obj(venue=INT, shop=INT, version=INT, is_active=BOOL))
declare("venue.deleted", Obj(venue=INT, shop=INT))

# A viewer's presence at a venue changed (docs/geofences.md, "Enter, exit, dwell"). No
# coordinates: which venue, whose shop, who, and when (the ping's ``at``, or the beat's now).
for kind in ("entered", "exited", "dwelled"):
    # ``user`` is null in a recorded event once that viewer revoked location consent
    # (services.location_erase); emitted events always name the viewer.
    declare(f"venue.{kind}", Obj(venue=INT, shop=INT, user=Nullable(INT), at=DATETIME))

# -- running-time coupons (docs/geofences.md) ----------------------------------------

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
