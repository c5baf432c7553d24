from creatorcommerce.errors import Conflict, DomainError, NotFound


class StreamNotFound(NotFound):
    code = "stream_not_found"
    message = "No such stream."


class InvalidStreamTransition(Conflict):
    code = "invalid_stream_transition"
    message = "The stream cannot go to that status from its current one."


class DealNotOpen(Conflict):
    code = "deal_not_open"
    message = "This deal is not open."


class DealNotFound(NotFound):
    code = "deal_not_found"
    message = "No such deal in this stream."


class SkuNotInShop(DomainError):
    code = "sku_not_in_shop"
    message = "That SKU does not belong to this stream's shop."


class LocationNotInShop(DomainError):
    code = "location_not_in_shop"
    message = "That location does not belong to this stream's shop."


class StreamHasOpenDeal(Conflict):
    code = "stream_has_open_deal"
    message = "A flash deal of this stream is open: close it first (it holds units of its location)."


class StreamHasOrders(Conflict):
    code = "stream_has_orders"
    message = "Orders were bought in a flash deal of this stream, so the stream cannot be deleted."


class InvalidViewerToken(DomainError):
    status = 401
    code = "invalid_viewer_token"
    message = "The viewer token is missing, expired or not for this stream."


class DealIsOpen(Conflict):
    code = "deal_is_open"
    message = "The deal is open. Close the deal first."


class DealHasOrders(Conflict):
    code = "deal_has_orders"
    message = "The deal has orders, so it cannot be deleted."


class AnotherDealOpen(Conflict):
    code = "another_deal_open"
    message = "Another deal on this SKU is open in this stream: close it first."


class InvalidStreamTimes(DomainError):
    code = "invalid_times"
    message = "A drop must end after it starts, and not in the past."


class InvalidStreamTitle(DomainError):
    code = "invalid_title"
    message = "A drop needs a title."


class UnknownSku(DomainError):
    code = "unknown_sku"
    message = "Some of these SKU codes are not your shop's."


class StreamIsLive(Conflict):
    code = "stream_live"
    message = "The drop is live: its start cannot move and it cannot be cancelled; end it instead."


class StreamIsEnded(Conflict):
    code = "stream_ended"
    message = "The drop is over: its times cannot change and it cannot be cancelled."


class StreamIsCancelled(Conflict):
    code = "stream_cancelled"
    message = "The drop was cancelled: it cannot be changed, started or ended any more."
