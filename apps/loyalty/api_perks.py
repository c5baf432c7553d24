"""``GET /api/v1/me/perks/`` and ``GET /api/v1/me/loyalty/?shop=<slug>`` (docs/loyalty.md,
"Perks and tiers")."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Shop
from creatorcommerce.api import error_responses
from creatorcommerce.errors import DomainError, NotFound

from .models import PerkKind
from .perks import perk_body, perks_listed
from .tiers import loyalty_body, standing

MAX_PERKS = 200


class ShopRequired(DomainError):
    code = "shop_required"
    message = "Name the shop: ?shop=<shop slug>."


class ShopNotFound(NotFound):
    code = "shop_not_found"
    message = "No such shop."


class PerkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=PerkKind.values)
    award = serializers.IntegerField(allow_null=True, help_text="the award that granted it; null: a tier's")
    used_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True, help_text="null: it does not expire")


class MyPerksView(APIView):
    """The signed-in viewer's perks, newest first (at most 200): used and expired ones
    included, withdrawn ones not."""

    @extend_schema(
        responses={200: PerkSerializer(many=True), **error_responses(**{"401": "not_authenticated"})},
        operation_id="me_perks_list",
    )
    def get(self, request):
        perks = perks_listed(user=request.user)[:MAX_PERKS]
        return Response(PerkSerializer([perk_body(p) for p in perks], many=True).data)


class TierRefSerializer(serializers.Serializer):
    name = serializers.CharField()
    threshold = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="spend that reaches it")


class NextTierSerializer(TierRefSerializer):
    spend_needed = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="spend still to reach it")


class LoyaltySerializer(serializers.Serializer):
    tier = TierRefSerializer(allow_null=True, help_text="the highest tier reached; null: none")
    spend = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="paid orders less refunded ones, over the tiers' period"
    )
    next_tier = NextTierSerializer(allow_null=True, help_text="the next tier more spend reaches; null: none")


class MyLoyaltyView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("shop", str, required=True, description="the shop's slug")],
        responses={
            200: LoyaltySerializer,
            **error_responses(**{"400": "shop_required", "401": "not_authenticated", "404": "shop_not_found"}),
        },
        operation_id="me_loyalty_retrieve",
    )
    def get(self, request):
        slug = request.query_params.get("shop", "").strip()
        if not slug:
            raise ShopRequired()
        shop = Shop.objects.select_related("owner").filter(slug=slug).first()
        if shop is None:
            raise ShopNotFound()
        return Response(loyalty_body(standing(user_id=request.user.pk, shop=shop, now=timezone.now())))
