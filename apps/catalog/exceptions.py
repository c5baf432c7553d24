from creatorcommerce.errors import Conflict, DomainError, NotFound


class SkuNotFound(NotFound):
    code = "sku_not_found"
    message = "No such SKU."


class AmbiguousSku(Conflict):
    code = "ambiguous_sku"
    message = "Several shops use this SKU code; say which with 'shop' (the shop's slug)."


class LocationNotFound(NotFound):
    code = "location_not_found"
    message = "No such location in your shop."


class DuplicateSkuCode(Conflict):
    code = "duplicate_sku_code"
    message = "Your shop already has a SKU with this code."


class InsufficientStock(Conflict):
    """Raised when a conditional stock update finds fewer units than asked for."""

    code = "sold_out"
    message = "Not enough stock left."


class BuyerLimitExceeded(Conflict):
    code = "buyer_limit_exceeded"
    message = "You have reached the per-buyer limit for this item."


class InvalidStockChange(DomainError):
    code = "invalid_stock_change"
    message = "Give either 'set' or 'add'."


class WebhookSignatureInvalid(DomainError):
    status = 401
    code = "invalid_signature"
    message = "The webhook signature, timestamp or source is not valid."


class WebhookPayloadInvalid(DomainError):
    code = "invalid_payload"
    message = "The webhook payload is not a valid price change."


class StockLimitExceeded(Conflict):
    """Raised when a creator's change would put more units on one stock level than allowed."""

    code = "stock_limit_exceeded"
    message = "That would put more units on this stock level than it may hold."


class VenueNotFound(NotFound):
    code = "venue_not_found"
    message = "No such venue."


class InvalidBundle(DomainError):
    code = "invalid_bundle"
    message = "The bundle rule is not valid."


class StockOwnedByEdge(Conflict):
    """A stock row at a venue location whose stock an edge node owns (docs/edge.md, "Who
    owns what"): it changes at the edge, and the cloud learns it from the edge's events."""

    code = "stock_owned_by_edge"
    message = "This location's stock is owned by an edge node: change it at the edge."
