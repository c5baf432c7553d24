"""The geofences app's errors (docs/geofences.md)."""

from creatorcommerce.errors import Conflict, DomainError, PermissionDenied

# -- running-time coupons (docs/geofences-coupons.md, "Errors") ------------------------------


class CouponNotYours(PermissionDenied):
    code = "coupon_not_yours"
    message = "This coupon was issued to someone else (sign in as its owner to use it)."


class CouponUsed(Conflict):
    code = "coupon_used"
    message = "This coupon has been used already."


class CouponExpired(Conflict):
    code = "coupon_expired"
    message = "This coupon has expired."


class CouponNotApplicable(Conflict):
    code = "coupon_not_applicable"
    message = "This coupon is not for these lines (another shop, or its SKU is not among them)."


class CouponCapReached(Conflict):
    code = "coupon_cap_reached"
    message = "This offer's coupons have all been redeemed."


class GeoOfferInvalid(DomainError):
    code = "invalid"
    message = "The geo offer is not valid."
