"""``POST /api/v1/geo/pings/`` and ``GET /api/v1/venues/`` (docs/geofences.md)."""

from __future__ import annotations

import math

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from creatorcommerce.api import error_responses, validated
from creatorcommerce.errors import DomainError
from creatorcommerce.throttling import FixedWindowThrottle

from .coupons import coupon_body, coupons_of_user
from .selectors import venues_list
from .services import geo_ping

MAX_NEAR_RADIUS_M = 50_000


class StrictFloatField(serializers.FloatField):
    """A JSON number only (no strings, no booleans), finite."""

    default_error_messages = {"type": "Expected a number."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("type")
        try:
            finite = math.isfinite(data)
        except OverflowError:  # an integer with more digits than any float (JSON allows it)
            finite = False
        if not finite:
            self.fail("type")
        return super().to_internal_value(data)


class PingSerializer(serializers.Serializer):
    lat = StrictFloatField(min_value=-90, max_value=90)
    lon = StrictFloatField(min_value=-180, max_value=180)
    accuracy_m = StrictFloatField(min_value=0, max_value=100_000, help_text="radius of the accuracy circle")
    at = serializers.DateTimeField(
        required=False, help_text="when the position was taken: ISO 8601 with an offset (`Z`, `+02:00`); default: now"
    )

    def validate_at(self, value):
        raw = self.initial_data.get("at")
        if not isinstance(raw, str):
            raise serializers.ValidationError("Expected an ISO 8601 string.", code="type")
        # Without an offset DRF reads the time in the active zone, which is the viewer's
        # profile zone (apps.accounts.middleware): the same ping would mean another moment
        # for each viewer, stale for some, in the future for others.
        parsed = parse_datetime(raw)
        if parsed is None or parsed.tzinfo is None:
            raise serializers.ValidationError("'at' needs its UTC offset ('Z' or '+02:00').", code="no_offset")
        return value


class PingVenueSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.ChoiceField(choices=["inside", "outside"])
    entered_at = serializers.DateTimeField(allow_null=True)
    dwelling = serializers.BooleanField()


class AnnouncementSerializer(serializers.Serializer):
    venue = serializers.IntegerField()
    name = serializers.CharField()
    text = serializers.CharField()
    starts_at = serializers.DateTimeField()
    distance_m = serializers.FloatField()


class PingResultSerializer(serializers.Serializer):
    ignored = serializers.ChoiceField(
        choices=["stale", "inaccurate"], required=False, help_text="present when the ping changed nothing, and why"
    )
    venues = PingVenueSerializer(many=True, help_text="every venue within 1 km, and every venue this ping changed")
    coupons = serializers.ListField(child=serializers.DictField(), help_text="coupons this ping issued")
    announcements = AnnouncementSerializer(many=True)


class PingsView(APIView):
    throttle_scope = "geo_ping"

    def get_throttles(self):
        return [FixedWindowThrottle()]

    @extend_schema(
        request=PingSerializer,
        responses={
            200: PingResultSerializer,
            **error_responses(
                **{
                    "400": "invalid (out-of-range coordinates, wrong types), malformed_request, ping_in_future",
                    "401": "not_authenticated",
                    "403": "consent_required (nothing stored)",
                    "429": "rate_limited (Retry-After)",
                }
            ),
        },
        operation_id="geo_pings_create",
    )
    def post(self, request):
        data = validated(PingSerializer, request.data)
        return Response(
            geo_ping(
                user=request.user, lat=data["lat"], lon=data["lon"], accuracy_m=data["accuracy_m"], at=data.get("at")
            )
        )


class VenueSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    shop = serializers.CharField(help_text="the shop's slug (as streams and checkout bodies name it)")
    fence = serializers.DictField(help_text="GeoJSON Feature; a circle is a Point with properties.radius_m")
    open_now = serializers.BooleanField()
    distance_m = serializers.FloatField(required=False, help_text="with `near` only: to the fence's edge, 0 inside")
    announcement = serializers.DictField(allow_null=True, help_text="{text, starts_at, radius_m} before the event")


class BadQuery(DomainError):
    code = "invalid_query"
    message = "The query parameters are invalid."


def _near(params) -> tuple[tuple[float, float] | None, float | None]:
    near, radius = params.get("near"), params.get("radius_m")
    if near is None:
        if radius is not None:
            raise BadQuery("radius_m needs near=<lat>,<lon>.")
        return None, None
    try:
        lat, lon = (float(part) for part in near.split(","))
    except ValueError:
        raise BadQuery("near must be <lat>,<lon>.") from None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise BadQuery("near: lat must be within -90..90 and lon within -180..180.")
    try:
        radius_m = float(radius) if radius is not None else 1000.0
    except ValueError:
        raise BadQuery("radius_m must be a number of metres.") from None
    if not (math.isfinite(radius_m) and 0 <= radius_m <= MAX_NEAR_RADIUS_M):
        raise BadQuery(f"radius_m must be between 0 and {MAX_NEAR_RADIUS_M}.")
    return (lat, lon), radius_m


class VenuesView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[
            OpenApiParameter("near", str, description="<lat>,<lon>: only venues within radius_m of it, nearest first"),
            OpenApiParameter(
                "radius_m", float, description=f"metres, 0-{MAX_NEAR_RADIUS_M} (default 1000; needs near)"
            ),
        ],
        responses={
            200: VenueSerializer(many=True),
            **error_responses(**{"400": "invalid_query", "429": "rate_limited"}),
        },
        operation_id="venues_list",
    )
    def get(self, request):
        near, radius_m = _near(request.query_params)
        return Response(venues_list(near=near, radius_m=radius_m))


# -- running-time coupons (docs/geofences.md) ----------------------------------------

MAX_COUPONS = 200


class CouponSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="what a buy or quote names as `coupon`")
    label = serializers.CharField()
    sku = serializers.CharField(allow_null=True, help_text="the SKU it is for; null: the whole shop")
    kind = serializers.ChoiceField(choices=["percent", "amount"])
    value_now = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        help_text="what it takes off now (percent, or an amount in the shop's currency); it runs down once a "
        "minute; 0.00 once used or expired",
    )
    next_value_at = serializers.DateTimeField(
        allow_null=True, help_text="when the value next steps down; null when it will not"
    )
    expires_at = serializers.DateTimeField()
    redeemed_at = serializers.DateTimeField(allow_null=True)
    venue = serializers.IntegerField(help_text="the venue that issued it")
    shop = serializers.CharField(help_text="the shop's slug")
    currency = serializers.CharField(help_text="the shop's currency (an `amount` coupon's value is in it)")


class MyCouponsView(APIView):
    """``GET /api/v1/me/coupons/``: the signed-in viewer's coupons, newest first, used and
    expired ones included (at most 200)."""

    @extend_schema(
        responses={200: CouponSerializer(many=True), **error_responses(**{"401": "not_authenticated"})},
        operation_id="me_coupons_list",
    )
    def get(self, request):
        now = timezone.now()
        coupons = coupons_of_user(user=request.user)[:MAX_COUPONS]
        return Response([coupon_body(c, now=now) for c in coupons])
