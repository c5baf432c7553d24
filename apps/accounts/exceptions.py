from creatorcommerce.errors import DomainError, NotFound


class UnknownUser(NotFound):
    code = "unknown_user"
    message = "No user has that e-mail address."


class UnknownRole(DomainError):
    code = "unknown_role"
    message = "The role must be 'creator' or 'staff'."
