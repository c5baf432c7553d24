import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.catalog.models import SKU, StockLevel
from creatorcommerce.admin import is_staff
from creatorcommerce.api import error_body
from creatorcommerce.clientip import client_ip

from .exceptions import StreamNotFound
from .media import MediaDecision, media_authorize, media_caller_check
from .models import FlashDeal, Stream
from .panels import control_panels
from .selectors import deal_row, stream_body, stream_get, stream_sales, streams_list

_DECISION_CODES = {
    MediaDecision.UNAUTHENTICATED: ("invalid_token", "Not allowed."),
    MediaDecision.FORBIDDEN: ("forbidden", "Not allowed."),
    MediaDecision.TOO_MANY: ("rate_limited", "Too many wrong credentials from this address; try again later."),
    MediaDecision.NOT_CONFIGURED: ("media_hook_not_configured", "Set MEDIA_HOOK_SECRET (docs/streams.md)."),
}


class MediaAuthView(APIView):
    """``POST /hooks/media/auth?secret=<MEDIA_HOOK_SECRET>``: MediaMTX-compatible HTTP
    authorisation. Not throttled per request (every viewer's playback comes through the one
    media server); the secret authenticates the server and guessing is limited instead
    (apps/streams/media.py)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    parser_classes: list = []  # the body is read here: a malformed one is a denial, not a 400

    @extend_schema(
        operation_id="media_auth",
        parameters=[
            OpenApiParameter(
                "secret", str, OpenApiParameter.QUERY, description="MEDIA_HOOK_SECRET (required unless DEBUG)"
            )
        ],
        request={
            "application/json": {
                "type": "object",
                "example": {
                    "user": "",
                    "password": "",
                    "token": "<ingest or viewer token>",
                    "ip": "203.0.113.5",
                    "action": "publish",
                    "path": "live/1",
                    "protocol": "rtmp",
                    "id": None,
                    "query": "",
                },
            }
        },
        responses={
            200: OpenApiResponse(description="allowed"),
            401: OpenApiResponse(description="no or bad hook secret, or no or bad token"),
            403: OpenApiResponse(description="not allowed on this path or for this action"),
            429: OpenApiResponse(description="too many wrong hook secrets or ingest tokens from this address"),
            503: OpenApiResponse(description="MEDIA_HOOK_SECRET is not set (DEBUG off)"),
        },
    )
    def post(self, request):
        decision = media_caller_check(secret=request.query_params.get("secret"), address=client_ip(request))
        if decision == MediaDecision.ALLOW:
            try:
                body = json.loads(request.body or b"null")
            except ValueError:  # too deep never gets here: the request guard refuses it
                body = None
            decision = media_authorize(body)
        if decision == MediaDecision.ALLOW:
            return Response({"allowed": True})
        code, message = _DECISION_CODES[decision]
        return Response(error_body(code, message), status=decision)


# -- HTML pages: the storefront, the stream page and the creator's control room -------------


def _stream_or_404(pk: int) -> Stream:
    try:
        return stream_get(stream_id=pk)
    except StreamNotFound as exc:
        raise Http404("No such stream.") from exc


def may_control(user, stream: Stream) -> bool:
    """The same rule as the control API and the control-room socket: owner or staff."""
    return is_staff(user) or bool(user.is_creator and stream.shop.owner_id == user.pk)


@require_safe
def home(request):
    """The storefront: live streams first, then what is coming up."""
    return render(
        request,
        "streams/home.html",
        {
            "live": streams_list(status=Stream.Status.LIVE, limit=24),
            "upcoming": streams_list(status=Stream.Status.SCHEDULED, limit=24),
        },
    )


@ensure_csrf_cookie
@require_safe
def stream_page(request, pk: int):
    """A stream: video, pinned products with live stock, one-tap buy. The page's script
    asks for a viewer token (a POST: it needs the CSRF cookie set here) and opens the socket."""
    stream = _stream_or_404(pk)
    return render(
        request,
        "streams/stream.html",
        {
            "stream": stream,
            "initial": stream_body(stream=stream),
            "can_control": request.user.is_authenticated and may_control(request.user, stream),
        },
    )


@ensure_csrf_cookie
@login_required
@require_safe
def control_room(request, pk: int):
    """The creator's live control room (the stream's shop owner, or staff)."""
    stream = _stream_or_404(pk)
    if not may_control(request.user, stream):
        raise PermissionDenied("Only this stream's creator (or staff) can open its control room.")
    skus = (
        SKU.objects.filter(shop=stream.shop, is_active=True)
        .select_related("product")
        .prefetch_related(
            Prefetch(
                "stock_levels",
                queryset=StockLevel.objects.filter(location__is_default=True),
                to_attr="default_levels",
            )
        )
        .order_by("product__title", "code")
    )
    catalog = [
        {
            "sku": sku.code,
            "title": sku.display_title,
            "price": str(sku.price),
            "currency": sku.currency,
            "available": sku.default_levels[0].available if sku.default_levels else 0,
        }
        for sku in skus
    ]
    deals = [
        deal_row(deal)
        for deal in FlashDeal.objects.filter(stream=stream).select_related("sku").order_by("opens_at", "pk")
    ]
    # The creator's own zone when one is active for the request (a user preference);
    # otherwise the page uses the browser's zone. Either way every time says its zone.
    active_zone = timezone.get_current_timezone_name()
    if stream.status == Stream.Status.LIVE and stream.started_at:
        when = ("live since", stream.started_at)
    elif stream.status == Stream.Status.ENDED and stream.ended_at:
        when = ("ended", stream.ended_at)
    elif stream.status == Stream.Status.CANCELLED and stream.cancelled_at:
        when = ("cancelled", stream.cancelled_at)
    else:
        when = ("starts", stream.starts_at)
    return render(
        request,
        "streams/control.html",
        {
            "time_zone": active_zone if active_zone != settings.TIME_ZONE else "",
            "when": when,
            "stream": stream,
            "initial": stream_body(stream=stream),
            "catalog": catalog,
            "deals": deals,
            "sales": stream_sales(stream=stream),
            # What apps above streams add to the room (apps/streams/panels.py), e.g. devices.
            "panels": control_panels(request=request, stream=stream),
        },
    )
