from creatorcommerce.errors import DomainError, NotFound


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
