"""API plumbing shared by every app: the JSON error format.

Every 4xx/5xx under ``/api/v1/`` is ``{"code": "...", "message": "...", ...}``; validation
errors add ``"errors": {field: [{"code", "message"}]}``.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import DomainError

log = logging.getLogger(__name__)


_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ValidationError: "invalid",
}


def error_body(code: str, message: str, **extra) -> dict:
    return {"code": code, "message": message, **extra}


def _flatten(detail):
    """DRF ValidationError detail -> {field: [{"code", "message"}]}."""
    if isinstance(detail, dict):
        return {key: _flatten_list(value) for key, value in detail.items()}
    return {"non_field_errors": _flatten_list(detail)}


def _flatten_list(value):
    if isinstance(value, dict):
        return _flatten(value)
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, (dict, list)):
                out.append(_flatten_list(item))
            else:
                out.append({"code": getattr(item, "code", "invalid"), "message": str(item)})
        return out
    return [{"code": getattr(value, "code", "invalid"), "message": str(value)}]


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, **exc.details), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django's 500 handler answers (JSON under /api/)
    code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), None)
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("invalid", "The request has invalid fields.", errors=_flatten(exc.detail))
        return response
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    if isinstance(detail, (list, dict)):
        message = "The request failed."
    else:
        message = str(detail)
        specific = getattr(detail, "code", None)
        if specific and specific not in {"error", "invalid", exc.default_code}:
            code = specific
    code = code or getattr(exc, "default_code", "error")
    extra = {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        extra["retry_after"] = int(exc.wait)
    response.data = error_body(code, message, **extra)
    return response


def json_error(request, code: str, message: str, status_code: int) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


API_PREFIXES = ("/api/", "/hooks/", "/.well-known/", "/_allauth/", "/sync/")


def is_api_path(path: str) -> bool:
    """Whether errors under ``path`` are JSON (else plain text: pages)."""
    return path.startswith(API_PREFIXES)


def is_api_request(request) -> bool:
    return is_api_path(request.path)


__all__ = ["exception_handler", "status"]


class ErrorSerializer(serializers.Serializer):
    """The body of every error under /api/v1/ (documentation only)."""

    code = serializers.CharField(help_text="Stable, machine-readable error code.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    errors = serializers.DictField(required=False, help_text="Per-field errors: {field: [{code, message}]}.")


def error_responses(**by_status: str) -> dict:
    """OpenAPI responses for error statuses: ``error_responses(**{"409": "sold_out, ..."})``."""
    return {
        int(code): OpenApiResponse(ErrorSerializer, description=f"codes: {codes}") for code, codes in by_status.items()
    }


class IsCreator(BasePermission):
    """A signed-in creator with a shop."""

    message = "Only creators can do this."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_creator and hasattr(user, "shop"))


def validated(serializer_class, data, **kwargs) -> dict:
    """Validate request data with a serializer; invalid data raises the 400 ValidationError."""
    if not isinstance(data, dict):
        raise exceptions.ValidationError({"non_field_errors": ["Expected a JSON object."]}, code="not_an_object")
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
