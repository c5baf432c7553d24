from creatorcommerce.errors import NotFound, PermissionDenied


class ConsentKindNotFound(NotFound):
    code = "consent_kind_not_found"
    message = "No such consent kind (location, calendar)."


class ConsentRequired(PermissionDenied):
    code = "consent_required"
    message = "This needs your consent first."
