"""OpenAPI (drf-spectacular): the project's authentication classes, and the schema class
that documents the error statuses every operation shares."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import AllowAny, IsAuthenticated


class SessionTokenScheme(OpenApiAuthenticationExtension):
    target_class = "creatorcommerce.authentication.SessionTokenAuthentication"
    name = "sessionToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Session-Token",
            "description": "meta.session_token from POST /_allauth/app/v1/auth/login or /signup",
        }


class CookieSessionScheme(OpenApiAuthenticationExtension):
    target_class = "creatorcommerce.authentication.CsrfSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


# -- the error statuses every operation shares --------------------------------------------
#
# Some answers do not depend on the endpoint: a bad or missing session (401), a refused
# role (403), a throttle (429), what creatorcommerce/guard.py refuses before any view
# (400 invalid_characters / malformed_json, 413 too_large), and admission control's
# refusal of a busy process (503 overloaded). Documenting them here, from
# the view's own authentication, permission and throttle classes, keeps the schema true for
# every operation without each view repeating them.

_ANYONE = (AllowAny, IsAuthenticated)
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class AutoSchema(SpectacularAutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        security = operation.get("security") or []
        has_body = "requestBody" in operation
        bad_request = "invalid_characters (a NUL byte in the path, query or a header)"
        if has_body:
            bad_request += ", malformed_json (not JSON, or nested too deeply)"
        self._add(responses, "400", bad_request)
        if has_body:
            self._add(responses, "413", "too_large (a body over the size limit)")
        if any(scheme for scheme in security):
            required = {} not in security
            codes = "not_authenticated, invalid_token" if required else "invalid_token (a bad session token was sent)"
            self._add(responses, "401", codes)
        if any(not isinstance(permission, _ANYONE) for permission in self.view.get_permissions()):
            self._add(responses, "403", "permission_denied")
        elif self.method in _UNSAFE and any("cookieAuth" in scheme for scheme in security):
            self._add(responses, "403", "permission_denied (a cookie session without its CSRF token)")
        if self.view.get_throttles():
            self._add(responses, "429", "rate_limited (see the Retry-After header)")
        # Admission control (creatorcommerce/admission.py) may refuse any request at once.
        overloaded = "overloaded (the server is too busy right now: retry after the Retry-After header's seconds)"
        if "503" in responses and "overloaded" not in responses["503"].get("description", ""):
            responses["503"]["description"] += f"; {overloaded}"
        self._add(responses, "503", overloaded)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _add(self, responses: dict, status: str, codes: str) -> None:
        if status in responses:
            return
        from .api import ErrorSerializer  # api.py imports DRF's views, which load this module

        responses[status] = self._get_response_for_code(
            OpenApiResponse(ErrorSerializer, description=f"codes: {codes}"), status
        )
