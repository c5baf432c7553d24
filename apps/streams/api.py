"""Streams API: public reads and viewer tokens; the creator's live controls."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.catalog.selectors import sku_of_shop
from creatorcommerce.admin import is_staff
from creatorcommerce.api import error_responses, validated
from creatorcommerce.errors import PermissionDenied
from creatorcommerce.fields import StrictCharField, StrictIntegerField

from .exceptions import DealNotFound
from .models import FlashDeal, Stream
from .selectors import stream_body, stream_get, streams_list, streams_pins
from .services import deal_close, deal_open_now, pin_add, pin_remove, stream_end, stream_start
from .tokens import viewer_token_issue


class DealSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    ends_at = serializers.DateTimeField()
    per_buyer_limit = serializers.IntegerField(allow_null=True)
    remaining = serializers.IntegerField()


class PinSerializer(serializers.Serializer):
    sku = serializers.CharField()
    title = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    available = serializers.IntegerField()
    deal = DealSerializer(allow_null=True)


class StreamSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    creator = serializers.CharField(help_text="the shop's name")
    shop = serializers.CharField(help_text="the shop's slug")
    status = serializers.ChoiceField(choices=Stream.Status.choices)
    starts_at = serializers.DateTimeField()
    hls_url = serializers.URLField(allow_null=True)
    poster_url = serializers.URLField(allow_null=True)
    pins = PinSerializer(many=True)


TokenSerializer = inline_serializer(
    "ViewerToken", {"token": serializers.CharField(), "expires_at": serializers.DateTimeField()}
)


class StreamsView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=["live", "scheduled"], description="default: both")],
        responses={200: StreamSerializer(many=True), **error_responses(**{"400": "invalid_status"})},
        operation_id="streams_list",
    )
    def get(self, request):
        status = request.query_params.get("status")
        if status not in (None, "", Stream.Status.LIVE, Stream.Status.SCHEDULED):
            raise ValidationError({"status": ["Use 'live' or 'scheduled'."]}, code="invalid_status")
        streams = streams_list(status=status or None)
        pins = streams_pins(streams=streams)
        return Response([stream_body(stream=s, pins=pins[s.pk]) for s in streams])


class StreamDetailView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: StreamSerializer, **error_responses(**{"404": "stream_not_found"})})
    def get(self, request, pk: int):
        return Response(stream_body(stream=stream_get(stream_id=pk)))


class ViewerTokenView(APIView):
    """A short-lived token to open the stream's WebSocket, bound to this stream, this viewer
    (signed-in user or anonymous session) and the request's Origin."""

    permission_classes = [AllowAny]

    @extend_schema(
        request=None,
        responses={200: TokenSerializer, **error_responses(**{"404": "stream_not_found"})},
        operation_id="streams_viewer_token",
    )
    def post(self, request, pk: int):
        stream = stream_get(stream_id=pk)
        user_id = request.user.pk if request.user.is_authenticated else None
        session_key = None
        if user_id is None:
            if not request.session.session_key:
                request.session.save()
            session_key = request.session.session_key
        token, expires_at = viewer_token_issue(
            stream_id=stream.pk, user_id=user_id, session_key=session_key, origin=request.headers.get("Origin")
        )
        return Response({"token": token, "expires_at": expires_at})


# -- creator controls ----------------------------------------------------------------------


def _controlled_stream(request, pk: int) -> Stream:
    stream = stream_get(stream_id=pk)
    user = request.user
    if not (is_staff(user) or (user.is_creator and stream.shop.owner_id == user.pk)):
        raise PermissionDenied("Only this stream's creator (or staff) can do this.")
    return stream


class PinInSerializer(serializers.Serializer):
    sku = StrictCharField(max_length=64)
    position = StrictIntegerField(min_value=0, max_value=10_000, required=False)


ControlResult = inline_serializer("ControlResult", {"stream": StreamSerializer()})
_CONTROL_ERRORS = error_responses(
    **{
        "401": "not_authenticated",
        "403": "permission_denied",
        "404": "stream_not_found, sku_not_found, deal_not_found",
        "409": "invalid_stream_transition, stream_not_live, another_deal_open",
    }
)


class StreamStartView(APIView):
    @extend_schema(request=None, responses={200: StreamSerializer, **_CONTROL_ERRORS}, operation_id="streams_start")
    def post(self, request, pk: int):
        stream_start(stream=_controlled_stream(request, pk))
        return Response(stream_body(stream=stream_get(stream_id=pk)))


class StreamEndView(APIView):
    @extend_schema(request=None, responses={200: StreamSerializer, **_CONTROL_ERRORS}, operation_id="streams_end")
    def post(self, request, pk: int):
        stream_end(stream=_controlled_stream(request, pk))
        return Response(stream_body(stream=stream_get(stream_id=pk)))


class PinsView(APIView):
    @extend_schema(
        request=PinInSerializer, responses={200: StreamSerializer, **_CONTROL_ERRORS}, operation_id="streams_pin"
    )
    def post(self, request, pk: int):
        stream = _controlled_stream(request, pk)
        data = validated(PinInSerializer, request.data)
        pin_add(stream=stream, sku=sku_of_shop(shop=stream.shop, code=data["sku"]), position=data.get("position"))
        return Response(stream_body(stream=stream))


class PinDetailView(APIView):
    @extend_schema(request=None, responses={200: StreamSerializer, **_CONTROL_ERRORS}, operation_id="streams_unpin")
    def delete(self, request, pk: int, code: str):
        stream = _controlled_stream(request, pk)
        pin_remove(stream=stream, sku=sku_of_shop(shop=stream.shop, code=code))
        return Response(stream_body(stream=stream))


class DealActionView(APIView):
    action = "open"

    @extend_schema(request=None, responses={200: StreamSerializer, **_CONTROL_ERRORS})
    def post(self, request, pk: int, deal_id: int):
        stream = _controlled_stream(request, pk)
        deal = FlashDeal.objects.filter(stream=stream, pk=deal_id).first()
        if deal is None:
            raise DealNotFound()
        if self.action == "open":
            deal_open_now(deal=deal)
        else:
            deal_close(deal=deal)
        return Response(stream_body(stream=stream))
