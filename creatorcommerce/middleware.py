"""Every error under the machine-facing paths answers JSON with a code.

DRF views already do (``creatorcommerce.api.exception_handler``); this catches the rest:
Django's own 404/405/CSRF pages, allauth headless's bare 400 for malformed JSON, and the
debug pages, so an app client never has to parse HTML.
"""

from __future__ import annotations

from django.http import JsonResponse

from .api import error_body, is_api_request

_STATUS_CODES = {
    400: ("bad_request", "The request is malformed."),
    401: ("not_authenticated", "Authentication is required."),
    403: ("permission_denied", "You are not allowed to do this."),
    404: ("not_found", "No such resource."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send application/json."),
    429: ("rate_limited", "Too many requests; slow down."),
}


class JsonErrorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code < 400 or not is_api_request(request):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        fallback = (
            ("server_error", "Something went wrong on our side.")
            if response.status_code >= 500
            else ("error", "The request failed.")
        )
        code, message = _STATUS_CODES.get(response.status_code, fallback)
        replaced = JsonResponse(error_body(code, message), status=response.status_code)
        for header in ("Allow", "WWW-Authenticate", "Retry-After"):
            if header in response:
                replaced[header] = response[header]
        return replaced
