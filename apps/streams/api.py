"""Streams API: public reads and viewer tokens; the creators' API for drops (create,
reschedule, cancel: docs/streams.md, "Creators' API for drops"); the creator's live
controls."""

from __future__ import annotations

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.catalog.selectors import sku_of_shop
from creatorcommerce.admin import is_staff, user_shop
from creatorcommerce.api import IsCreator, error_responses, validated
from creatorcommerce.errors import PermissionDenied
from creatorcommerce.fields import StrictCharField, StrictIntegerField

from .exceptions import DealNotFound, StreamNotFound, UnknownSku
from .models import FlashDeal, Stream
from .selectors import (
    early_deals,
    shop_skus_by_code,
    stream_body,
    stream_get,
    stream_owner_body,
    streams_list,
    streams_pins,
)
from .services import (
    deal_close,
    deal_open_now,
    pin_add,
    pin_remove,
    stream_cancel,
    stream_create,
    stream_end,
    stream_start,
    stream_update,
)
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
    shipping_fee = serializers.DecimalField(
        max_digits=10, decimal_places=2, help_text="what a delivered order of this shop pays for shipping, once"
    )
    pins = PinSerializer(many=True)


TokenSerializer = inline_serializer(
    "ViewerToken", {"token": serializers.CharField(), "expires_at": serializers.DateTimeField()}
)


# -- the creators' API for drops ----------------------------------------------------------


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 string with its UTC offset (``Z``, ``+02:00``): without one DRF would read
    it in the active zone, and the same body would schedule another moment per user."""

    default_error_messages = {"no_offset": "Give the time with its UTC offset ('Z' or '+02:00')."}

    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid", format="ISO 8601 with an offset")
        try:
            parsed = parse_datetime(value) if len(value) <= 64 else None
        except (ValueError, TypeError):  # well formed, but no such moment: 2031-02-30, +99:00
            self.fail("invalid", format="ISO 8601 with an offset")
        if parsed is not None and parsed.tzinfo is None:
            self.fail("no_offset")
        try:
            return super().to_internal_value(value)
        except (ValueError, TypeError, OverflowError):
            self.fail("invalid", format="ISO 8601 with an offset")


MAX_PINS = 50
DROP_FIELDS = ("title", "starts_at", "ends_at", "description")


class _NoUnknownFields:
    """A key the endpoint does not take is a 400 ``unknown_field``, not silently ignored (a
    client sending ``status`` or ``pins`` to the wrong endpoint learns it)."""

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: ["Not a field this endpoint takes."] for name in unknown}, code="unknown_field"
            )
        return attrs


class DropInSerializer(_NoUnknownFields, serializers.Serializer):
    title = StrictCharField(max_length=200)
    starts_at = AwareDateTimeField()
    ends_at = AwareDateTimeField(required=False, allow_null=True)
    description = StrictCharField(required=False, allow_blank=True, max_length=10_000, multiline=True)
    pins = serializers.ListField(
        child=StrictCharField(max_length=64),
        required=False,
        max_length=MAX_PINS,
        help_text="SKU codes of your shop, pinned in this order",
    )

    def validate_pins(self, codes):
        if len(set(codes)) != len(codes):
            raise serializers.ValidationError("A SKU is listed twice.", code="duplicate_sku")
        return codes


class DropPatchSerializer(_NoUnknownFields, serializers.Serializer):
    title = StrictCharField(max_length=200, required=False)
    starts_at = AwareDateTimeField(required=False)
    ends_at = AwareDateTimeField(required=False, allow_null=True)
    description = StrictCharField(required=False, allow_blank=True, max_length=10_000, multiline=True)


class DropSerializer(StreamSerializer):
    ends_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    uid = serializers.UUIDField(help_text="the drop's calendar UID, the same for its whole life")
    sequence = serializers.IntegerField(
        help_text="its calendar SEQUENCE: raised by every change of its title, start or end, and by cancelling"
    )


class IsCreatorOrStaff(BasePermission):
    """A creator with a shop (their own shop's drops), or staff (any shop's)."""

    message = "Only creators (and staff) can do this."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and (is_staff(user) or user_shop(user) is not None))


def _owned_stream(request, pk: int) -> Stream:
    """The drop ``pk`` if it is the creator's shop's (staff: any shop's); another shop's is a
    404, as if it did not exist (docs/streams.md)."""
    streams = Stream.objects.select_related("shop")
    if not is_staff(request.user):
        streams = streams.filter(shop=user_shop(request.user))
    stream = streams.filter(pk=pk).first()
    if stream is None:
        raise StreamNotFound()
    return stream


_DROP_ERRORS = {
    "403": "permission_denied (not a creator)",
    "404": "stream_not_found (also another shop's drop)",
}


class StreamsView(APIView):
    def get_permissions(self):
        return [IsCreator()] if self.request.method == "POST" else [AllowAny()]

    @extend_schema(
        request=DropInSerializer,
        responses={
            201: DropSerializer,
            **error_responses(
                **{"400": "invalid, invalid_times, invalid_title, unknown_sku", "403": "permission_denied"}
            ),
        },
        operation_id="streams_create",
        description='A creator schedules a drop of their shop (docs/streams.md, "Creators\' API for drops").',
    )
    def post(self, request):
        data = validated(DropInSerializer, request.data)
        shop = user_shop(request.user)
        pins, unknown = shop_skus_by_code(shop=shop, codes=data.pop("pins", []))
        if unknown:
            raise UnknownSku(skus=unknown)
        stream = stream_create(shop=shop, pins=pins, **data)
        return Response(stream_owner_body(stream=stream_get(stream_id=stream.pk)), status=201)

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
    def get_permissions(self):
        return [IsCreatorOrStaff()] if self.request.method == "PATCH" else [AllowAny()]

    @extend_schema(responses={200: StreamSerializer, **error_responses(**{"404": "stream_not_found"})})
    def get(self, request, pk: int):
        return Response(stream_body(stream=stream_get(stream_id=pk)))

    @extend_schema(
        request=DropPatchSerializer,
        responses={
            200: DropSerializer,
            **error_responses(
                **{
                    "400": "invalid, invalid_times, invalid_title",
                    **_DROP_ERRORS,
                    "409": "stream_live, stream_ended, stream_cancelled",
                }
            ),
        },
        operation_id="streams_update",
        description="Reschedule (starts_at, ends_at), rename or describe a drop; only what is sent changes.",
    )
    def patch(self, request, pk: int):
        stream = _owned_stream(request, pk)
        data = validated(DropPatchSerializer, request.data)
        stream_update(stream=stream, changes=data)
        return Response(stream_owner_body(stream=stream_get(stream_id=pk)))


class EarlyDealSerializer(serializers.Serializer):
    sku = serializers.CharField()
    id = serializers.IntegerField(help_text="the deal's id")
    label = serializers.CharField(help_text="what the receipt will say, naming the perk")
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    opens_at = serializers.DateTimeField(help_text="when it opens to everyone")
    ends_at = serializers.DateTimeField()
    units_left = serializers.IntegerField(help_text="what can still be sold early")
    per_buyer_limit = serializers.IntegerField(allow_null=True)


class EarlyDealsView(APIView):
    """``GET /api/v1/streams/{id}/early-deals/``: the deals of the drop's pins the signed-in
    viewer may buy before they open (an early-access perk; docs/pricing.md, "Early
    access"), so their pins show the price the buy will charge."""

    @extend_schema(
        responses={
            200: EarlyDealSerializer(many=True),
            **error_responses(**{"401": "not_authenticated", "404": "stream_not_found"}),
        },
        operation_id="streams_early_deals",
    )
    def get(self, request, pk: int):
        stream = stream_get(stream_id=pk)
        if stream.status != Stream.Status.SCHEDULED and stream.status != Stream.Status.LIVE:
            return Response([])
        return Response(early_deals(stream=stream, buyer=request.user))


class StreamCancelView(APIView):
    permission_classes = [IsCreatorOrStaff]

    @extend_schema(
        request=None,
        responses={200: DropSerializer, **error_responses(**{**_DROP_ERRORS, "409": "stream_live, stream_ended"})},
        operation_id="streams_cancel",
        description="Cancel a scheduled drop (again: no change). A live drop is ended instead (POST .../end).",
    )
    def post(self, request, pk: int):
        stream_cancel(stream=_owned_stream(request, pk))
        return Response(stream_owner_body(stream=stream_get(stream_id=pk)))


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
        "409": "invalid_stream_transition, stream_cancelled, stream_not_live, another_deal_open",
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
