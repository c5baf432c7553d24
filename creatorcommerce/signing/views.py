"""The node's public keys, for anyone who wants to check a receipt without asking us."""

from django.http import JsonResponse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from .selectors import jwks_public

#: Seconds a client or proxy may reuse the key set. A receipt signed by a key newer than a
#: client's copy names an unknown kid; clients re-fetch the set then (RFC 7517 practice).
JWKS_MAX_AGE = 300


@require_safe
def jwks(request):
    """``GET /.well-known/jwks.json``: the JWK Set, public, no authentication."""
    key_set = jwks_public()
    # application/json rather than application/jwk-set+json: every HTTP client parses it
    # without configuration, and RFC 7517 consumers accept it.
    response = JsonResponse(key_set)
    if key_set["keys"]:
        patch_cache_control(response, public=True, max_age=JWKS_MAX_AGE)
    else:
        # No key yet: the first receipt will create one, so an empty set must not be cached.
        patch_cache_control(response, no_cache=True)
    return response
