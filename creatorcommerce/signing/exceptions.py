from creatorcommerce.errors import DomainError


class InvalidReceipt(DomainError):
    """A receipt token that this node cannot vouch for: malformed, not signed with one of
    its keys, signed with another algorithm, or altered after signing. The reason is in
    ``details["reason"]``; clients should treat every reason alike."""

    status = 400
    code = "invalid_receipt"
    message = "The receipt is not valid."
