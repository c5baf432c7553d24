"""``POST /api/v1/quotes/``: what a buy would cost now, writing nothing (docs/pricing.md)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from creatorcommerce.api import error_responses, validated
from creatorcommerce.fields import StrictCharField, StrictIntegerField

from .offers import Context
from .selectors import price_quote

MAX_LINES = 20


def _quantity_field(**kwargs):
    return StrictIntegerField(min_value=1, **kwargs)


def _check_quantity(value):
    if value > settings.ORDER_MAX_QUANTITY:
        raise serializers.ValidationError(f"At most {settings.ORDER_MAX_QUANTITY} per order.", code="max_value")
    return value


class CheckoutLineSerializer(serializers.Serializer):
    sku = StrictCharField(max_length=64)
    quantity = _quantity_field(default=1)

    def validate_quantity(self, value):
        return _check_quantity(value)


class CheckoutRequestSerializer(serializers.Serializer):
    """The body of a buy and of a quote: v1 (``sku``, ``quantity``) or ``lines``; one of
    the two (docs/buying.md, "Several lines in one tap")."""

    sku = StrictCharField(max_length=64, required=False, help_text="v1 body: one SKU (or use `lines`)")
    quantity = _quantity_field(required=False, help_text="v1 body: units of `sku` (default 1)")
    lines = CheckoutLineSerializer(
        many=True,
        required=False,
        min_length=1,
        max_length=MAX_LINES,
        help_text=f"1-{MAX_LINES} lines of one shop; a SKU may appear once (duplicates: 400 duplicate_sku). "
        "All or nothing: if one line cannot be had, nothing is taken.",
    )
    stream = StrictIntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="the stream the buy is made in; names the shop (the stream's) and applies its open flash deals",
    )
    shop = StrictCharField(
        max_length=140,
        required=False,
        help_text="the slug of the shop whose SKUs are meant. SKU codes are unique per shop only: name the shop "
        "(here or through `stream`) so that other shops using the same code never change the answer; without "
        "either, a code several shops use answers 409 ambiguous_sku",
    )
    coupon = StrictCharField(
        max_length=64,
        required=False,
        help_text="a coupon code from GET /api/v1/me/coupons/ (the signed-in owner's only), valued at the moment of "
        "the request; at most one per order, never on a line a bundle prices. Unknown: 404 coupon_not_found; "
        "someone else's, or in an anonymous quote: 403 coupon_not_yours; 409 coupon_used, coupon_expired, "
        "coupon_not_applicable (another shop, or its SKU not among the lines), coupon_cap_reached",
    )

    def validate_quantity(self, value):
        return _check_quantity(value)

    def validate(self, attrs):
        if "sku" not in attrs and "lines" not in attrs:
            raise serializers.ValidationError(
                {"sku": [serializers.ErrorDetail("Give 'sku' (and 'quantity') or 'lines'.", code="required")]}
            )
        if "sku" in attrs and "lines" in attrs:
            raise serializers.ValidationError("Give either 'sku' (and 'quantity') or 'lines'.", code="sku_or_lines")
        if "lines" in attrs and "quantity" in attrs:
            raise serializers.ValidationError("'quantity' goes on each line.", code="sku_or_lines")
        if "sku" in attrs:
            attrs.setdefault("quantity", 1)
        elif sum(line["quantity"] for line in attrs["lines"]) > settings.ORDER_MAX_QUANTITY:
            message = f"At most {settings.ORDER_MAX_QUANTITY} units per order, all lines together."
            raise serializers.ValidationError({"lines": [serializers.ErrorDetail(message, code="max_value")]})
        return attrs


def checkout_lines(data: dict) -> list[tuple[str, int]]:
    """The validated body's lines as [(sku code, quantity)]."""
    if "lines" in data:
        return [(line["sku"], line["quantity"]) for line in data["lines"]]
    return [(data["sku"], data.get("quantity", 1))]


class AdjustmentSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=["deal", "coupon", "perk", "bundle"])
    id = serializers.IntegerField()
    label = serializers.CharField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="negative for a discount")


class QuoteLineSerializer(serializers.Serializer):
    sku = serializers.CharField()
    title = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="the list price")
    adjustments = AdjustmentSerializer(many=True)
    total = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="unit_price x quantity + the adjustments' amounts"
    )


class QuoteSerializer(serializers.Serializer):
    lines = QuoteLineSerializer(many=True)
    subtotal = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="the lines' list prices")
    discount = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="subtotal - total")
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    suggestions = serializers.ListField(child=serializers.DictField(), help_text="bundles that would apply (none yet)")


class QuotesView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        request=CheckoutRequestSerializer,
        responses={
            200: QuoteSerializer,
            **error_responses(
                **{
                    "400": "invalid, malformed_request, duplicate_sku, several_shops, mixed_currencies, "
                    "amount_too_large",
                    "403": "coupon_not_yours (someone else's coupon, or any coupon in an anonymous quote)",
                    "404": "sku_not_found (with sku), stream_not_found, coupon_not_found",
                    "409": "sold_out (with sku), buyer_limit_exceeded (with sku, limit), ambiguous_sku (with sku), "
                    "coupon_used, coupon_expired, coupon_not_applicable, coupon_cap_reached",
                    "429": "rate_limited",
                }
            ),
        },
        operation_id="quotes_create",
    )
    def post(self, request):
        data = validated(CheckoutRequestSerializer, request.data)
        lines = checkout_lines(data)
        context = Context(stream=data.get("stream"), shop=data.get("shop"), coupon=data.get("coupon"))
        buyer = request.user if request.user.is_authenticated else None
        return Response(price_quote(buyer=buyer, lines=lines, context=context).body())
