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

from .bundles import bundle_request
from .exceptions import PickupRequired, VenueRequired
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
    bundle = StrictIntegerField(
        min_value=1,
        max_value=2**31 - 1,
        required=False,
        help_text="a smart bundle's id: buys (or quotes) one unit of each of its SKUs at the bundle's price. Without "
        "`sku` and `lines` its SKUs are the lines; with `lines` they must be exactly its SKUs, 1 each "
        "(else 400 bundle_mismatch)",
    )
    fulfilment = serializers.ChoiceField(
        choices=["delivery", "pickup"],
        required=False,
        help_text="`delivery` (default: shipped from the shop's default location) or `pickup` at `venue` (the "
        "units come from the venue's own stock; no shipping address needed)",
    )
    venue = StrictIntegerField(
        min_value=1,
        max_value=2**31 - 1,
        required=False,
        help_text="with `fulfilment: pickup` only: the venue (its location id) of the lines' shop to pick up at",
    )

    def validate_quantity(self, value):
        return _check_quantity(value)

    def validate(self, attrs):
        if "sku" not in attrs and "lines" not in attrs and "bundle" in attrs:
            return attrs  # the bundle's SKUs are the lines (checkout_request)
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


def checkout_request(data: dict) -> tuple[list[tuple[str, int]], Context]:
    """The validated body's lines and context. Raises VenueRequired (pickup without a
    venue), PickupRequired (a venue without pickup), and for a body that names a bundle and
    no lines, BundleNotFound; its lines are then the bundle's SKUs, 1 each, in its shop."""
    pickup = data.get("fulfilment", "delivery") == "pickup"
    venue = data.get("venue")
    if pickup and venue is None:
        raise VenueRequired()
    if venue is not None and not pickup:
        raise PickupRequired()
    shop = data.get("shop")
    if "bundle" in data and "sku" not in data and "lines" not in data:
        lines, shop = bundle_request(bundle_id=data["bundle"], shop=shop, stream=data.get("stream"))
    else:
        lines = checkout_lines(data)
    context = Context(
        stream=data.get("stream"), shop=shop, coupon=data.get("coupon"), venue=venue, bundle=data.get("bundle")
    )
    return lines, context


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


class ShippingSerializer(serializers.Serializer):
    fee = serializers.DecimalField(
        max_digits=10, decimal_places=2, help_text="the shop's shipping fee; 0 for a pickup or a shop without one"
    )
    adjustments = AdjustmentSerializer(many=True, help_text='a free-shipping perk (`"source": "perk"`) waives the fee')
    total = serializers.DecimalField(max_digits=10, decimal_places=2, help_text="fee + the adjustments' amounts")


class BundleSuggestionSerializer(serializers.Serializer):
    bundle = serializers.IntegerField(help_text='the bundle\'s id: buy it with `"bundle": id`')
    label = serializers.CharField()
    skus = serializers.ListField(child=serializers.CharField(), help_text="its SKUs' codes, the anchor first")
    price = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="what the bundle costs")
    list_price = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="its SKUs' list prices")
    saving = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="list_price - price")


class QuoteSerializer(serializers.Serializer):
    lines = QuoteLineSerializer(many=True)
    subtotal = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="the lines' list prices")
    discount = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="what offers took off the lines: subtotal - the lines' totals"
    )
    shipping = ShippingSerializer()
    total = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="subtotal - discount + shipping.total")
    currency = serializers.CharField()
    suggestions = BundleSuggestionSerializer(
        many=True,
        help_text="bundles that would apply: active bundles anchored on one of the lines whose trigger holds now "
        "(buy one with `bundle`); empty for a quote that names a bundle",
    )


class QuotesView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        request=CheckoutRequestSerializer,
        responses={
            200: QuoteSerializer,
            **error_responses(
                **{
                    "400": "invalid, malformed_request, duplicate_sku, several_shops, mixed_currencies, "
                    "amount_too_large, venue_required, pickup_required, venue_not_of_shop, bundle_mismatch",
                    "403": "coupon_not_yours (someone else's coupon, or any coupon in an anonymous quote)",
                    "404": "sku_not_found (with sku), stream_not_found, coupon_not_found, venue_not_found, "
                    "bundle_not_found",
                    "409": "sold_out (with sku), buyer_limit_exceeded (with sku, limit), ambiguous_sku (with sku), "
                    "coupon_used, coupon_expired, coupon_not_applicable, coupon_cap_reached, bundle_not_available, "
                    "pickup_not_available (with sku)",
                    "429": "rate_limited",
                }
            ),
        },
        operation_id="quotes_create",
    )
    def post(self, request):
        data = validated(CheckoutRequestSerializer, request.data)
        lines, context = checkout_request(data)
        buyer = request.user if request.user.is_authenticated else None
        return Response(price_quote(buyer=buyer, lines=lines, context=context).body())
