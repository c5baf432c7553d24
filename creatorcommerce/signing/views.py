"""The node's public keys, for anyone who wants to check a receipt without asking us."""

from django.utils.cache import patch_cache_control
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from .selectors import jwks_public

#: Seconds a client or proxy may reuse the key set. A receipt signed by a key newer than a
#: client's copy names an unknown kid; clients re-fetch the set then (RFC 7517 practice).
JWKS_MAX_AGE = 300


@extend_schema(
    operation_id="jwks",
    summary="Public receipt-signing keys (JWK Set, RFC 7517; OKP/Ed25519, alg EdDSA)",
    responses={
        200: OpenApiResponse(
            description='{"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "x", "kid"}]}; '
            "receipts verify with PyJWT, joserfc and jose out of the box (docs/receipts.md)"
        )
    },
)
@api_view(["GET", "HEAD"])
@authentication_classes([])
@permission_classes([AllowAny])
def jwks(request):
    """``GET /.well-known/jwks.json``: the JWK Set, public, no authentication."""
    key_set = jwks_public(registered=True)  # and the edges registered here (docs/edge.md)
    # application/json rather than application/jwk-set+json: every HTTP client parses it
    # without configuration, and RFC 7517 consumers accept it.
    response = Response(key_set)
    if key_set["keys"]:
        patch_cache_control(response, public=True, max_age=JWKS_MAX_AGE)
    else:
        # No key yet: the first receipt will create one, so an empty set must not be cached.
        patch_cache_control(response, no_cache=True)
    return response
