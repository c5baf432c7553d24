from creatorcommerce.errors import Conflict, DomainError, NotFound


class DuplicateSku(DomainError):
    code = "duplicate_sku"
    message = "Each SKU may appear on one line only; put the whole quantity on that line."


class SeveralShops(DomainError):
    code = "several_shops"
    message = "All lines must be from one shop."


class MixedCurrencies(DomainError):
    code = "mixed_currencies"
    message = "All lines must be priced in one currency."


class CouponNotFound(NotFound):
    code = "coupon_not_found"
    message = "No such coupon for these lines."


class TotalTooLarge(DomainError):
    code = "amount_too_large"
    message = "The order total is larger than can be charged in one order."


class VenueRequired(DomainError):
    code = "venue_required"
    message = "A pickup needs the 'venue' to pick up at."


class PickupRequired(DomainError):
    code = "pickup_required"
    message = '\'venue\' goes with "fulfilment": "pickup" only.'


class VenueNotOfShop(DomainError):
    code = "venue_not_of_shop"
    message = "This venue is not one of the shop's: pick up where the shop sells."


class BundleNotFound(NotFound):
    code = "bundle_not_found"
    message = "No such bundle on sale in this shop."


class BundleMismatch(DomainError):
    code = "bundle_mismatch"
    message = "A bundle is one unit of each of its SKUs: give exactly those lines, or no lines."


class BundleNotAvailable(Conflict):
    code = "bundle_not_available"
    message = "This bundle is not offered right now."


class PickupNotAvailable(Conflict):
    """A pickup line whose units an offer holds (a flash deal's units are set aside at the
    location the deal drew them from, not on the venue's shelf)."""

    code = "pickup_not_available"
    message = "This item's offer units are not on the venue's shelf: buy it for delivery."
