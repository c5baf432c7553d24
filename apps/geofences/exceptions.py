"""The geofences app's errors (docs/geofences.md)."""

from creatorcommerce.errors import Conflict, DomainError, NotFound, PermissionDenied


class InvalidFence(DomainError):
    """The fence is not a valid GeoJSON Polygon/MultiPolygon or circle; the message says why."""

    code = "invalid_fence"
    message = "The fence is invalid."


class FenceUnsupported(DomainError):
    """A valid fence we do not handle: across the antimeridian, near the poles, too large
    (docs/geofences.md, "Antimeridian and poles")."""

    code = "fence_unsupported"
    message = "This fence is not supported."


class VenueNotFound(NotFound):
    code = "venue_not_found"
    message = "No such venue."


class NotAVenueLocation(DomainError):
    code = "not_a_venue_location"
    message = "A venue is a location of kind 'venue' of the same shop."


class PingInvalid(DomainError):
    code = "invalid_ping"
    message = "The ping is invalid."


# -- running-time coupons (docs/geofences.md, "Errors") ------------------------------


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
