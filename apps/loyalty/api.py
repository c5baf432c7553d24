"""The loyalty API (docs/loyalty.md). ``GET /api/v1/me/badges/``: the signed-in viewer's
granted badges."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from creatorcommerce.api import error_responses

from .awards import award_body, awards_granted_of_user

MAX_BADGES = 500


class BadgeRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    icon = serializers.CharField(help_text="an emoji or a short symbol")


class MyBadgeSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="the award's id")
    badge = BadgeRefSerializer()
    awarded_at = serializers.DateTimeField(help_text="when it was earned (UTC)")


class MyBadgesView(APIView):
    """``GET /api/v1/me/badges/``: the signed-in viewer's granted awards, newest first (at
    most 500); pending and revoked ones are not listed."""

    @extend_schema(
        responses={200: MyBadgeSerializer(many=True), **error_responses(**{"401": "not_authenticated"})},
        operation_id="me_badges_list",
    )
    def get(self, request):
        awards = awards_granted_of_user(user=request.user)[:MAX_BADGES]
        return Response(MyBadgeSerializer([award_body(a) for a in awards], many=True).data)
