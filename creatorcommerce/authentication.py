"""DRF authentication for /api/v1/ (kept apart from api.py: DRF imports it while loading
its own views, so it must not import rest_framework.views)."""

from allauth.headless.contrib.rest_framework.authentication import XSessionTokenAuthentication
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication


class SessionTokenAuthentication(XSessionTokenAuthentication):
    """allauth headless's ``X-Session-Token``; a token that does not resolve is a 401, not
    a silent fall-through to anonymous."""

    def authenticate(self, request):
        token = self.get_session_token(request)
        if not token:
            return None
        result = super().authenticate(request)
        if result is None:
            raise exceptions.AuthenticationFailed("The session token is invalid or expired.", code="invalid_token")
        return result

    def authenticate_header(self, request):
        return 'X-Session-Token realm="api"'


class CsrfSessionAuthentication(SessionAuthentication):
    """Cookie sessions for the browser storefront, with DRF's CSRF check on unsafe methods."""
