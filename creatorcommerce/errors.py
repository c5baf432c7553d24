"""Typed domain errors. Services raise them; the API turns them into JSON with a code.

A domain error carries the HTTP status a client should see, a stable machine-readable
``code`` and a human message, so views stay thin and every app answers alike.
"""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "invalid"
    message = "The request is invalid."

    def __init__(self, message: str | None = None, *, code: str | None = None, **details):
        self.message = message or self.message
        if code is not None:
            self.code = code
        self.details = details
        super().__init__(self.message)


class NotFound(DomainError):
    status = 404
    code = "not_found"
    message = "No such object."


class PermissionDenied(DomainError):
    status = 403
    code = "permission_denied"
    message = "You are not allowed to do this."


class Conflict(DomainError):
    status = 409
    code = "conflict"
    message = "The request conflicts with the current state."


class Unprocessable(DomainError):
    status = 422
    code = "unprocessable"
    message = "The request cannot be processed."
