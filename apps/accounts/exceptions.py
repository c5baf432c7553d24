from creatorcommerce.errors import DomainError, NotFound


class UnknownUser(NotFound):
    code = "unknown_user"
    message = "No user has that e-mail address."


class UnknownRole(DomainError):
    code = "unknown_role"
    message = "The role must be 'creator' or 'staff'."


class InvalidTimeZone(DomainError):
    code = "invalid_time_zone"
    message = "Use an IANA time zone name such as Europe/Berlin or America/New_York."
