from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from creatorcommerce.api import error_responses

from .webhooks import price_webhook_apply, price_webhook_verify


class _RawBody(BaseParser):
    """The signature covers the exact bytes, so the view reads ``request.body`` itself."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


class PriceWebhookView(APIView):
    """``POST /hooks/price/?source=<id>``: a price tracker reports price changes, signed per
    Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``)."""

    authentication_classes: list = []  # authenticated by its signature, not a cookie: no CSRF
    permission_classes = [AllowAny]
    parser_classes = [_RawBody]

    @extend_schema(
        operation_id="price_webhook",
        parameters=[
            OpenApiParameter("source", str, description="the price source's public id", required=True),
            *[
                OpenApiParameter(h, str, OpenApiParameter.HEADER, required=True)
                for h in ("webhook-id", "webhook-timestamp", "webhook-signature")
            ],
        ],
        request={
            "application/json": {
                "type": "object",
                "example": {
                    "type": "price.changed",
                    "timestamp": "2026-11-25T10:00:00Z",
                    "data": {"sku": "tracker-item-id", "price": "18.50", "currency": "USD"},
                },
            }
        },
        responses={
            200: OpenApiResponse(
                description='{"status": "applied"|"ignored"|"duplicate", ...}; a repeated webhook-id is a no-op'
            ),
            **error_responses(
                **{
                    "400": "invalid_payload",
                    "401": "invalid_signature (bad signature, stale timestamp, unknown source)",
                }
            ),
        },
    )
    def post(self, request):
        source, webhook_id, payload = price_webhook_verify(
            source_id=request.query_params.get("source"), body=request.body, headers=request.headers
        )
        return Response(price_webhook_apply(source=source, webhook_id=webhook_id, payload=payload))
