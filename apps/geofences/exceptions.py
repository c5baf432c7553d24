from creatorcommerce.errors import DomainError, NotFound


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
