"""The geofences API (docs/geofences.md)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from creatorcommerce.api import error_responses

from .coupons import coupon_body, coupons_of_user

# -- running-time coupons (docs/geofences-coupons.md) ----------------------------------------

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
    shop = serializers.IntegerField()


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
