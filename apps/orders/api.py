"""Orders API: the one-tap buy, order history, and the buyer's checkout details."""

from __future__ import annotations

import re

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.pricing.api import AdjustmentSerializer, CheckoutRequestSerializer, ShippingSerializer, checkout_request
from creatorcommerce.api import error_responses, validated
from creatorcommerce.fields import StrictCharField
from creatorcommerce.metrics import buy_answered
from creatorcommerce.throttling import FixedWindowThrottle

from .exceptions import IDEMPOTENCY_KEY_RE, IdempotencyKeyInvalid, IdempotencyKeyMissing
from .selectors import address_body, checkout_profile, order_body, order_of_buyer, orders_of_buyer
from .services import address_set, order_place, payment_method_add, request_fingerprint
from .soldout import key_sent


class BuySerializer(CheckoutRequestSerializer):
    """The buy's body: the v1 single SKU, or 1-20 ``lines`` (docs/buying.md, "Several lines
    in one tap"); the same body a quote takes."""


class LineSerializer(serializers.Serializer):
    sku = serializers.CharField()
    title = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="the list price")
    adjustments = AdjustmentSerializer(many=True, help_text="one per applied offer; amount negative for a discount")
    total = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="unit_price x quantity + the adjustments' amounts"
    )


class ShippingAddressSerializer(serializers.Serializer):
    name = serializers.CharField()
    line1 = serializers.CharField()
    line2 = serializers.CharField(allow_blank=True)
    city = serializers.CharField()
    region = serializers.CharField(allow_blank=True)
    postal_code = serializers.CharField()
    country = serializers.CharField(help_text="ISO 3166-1 alpha-2")


class PickupSerializer(serializers.Serializer):
    venue = serializers.IntegerField(help_text="the venue's (location's) id")
    name = serializers.CharField()
    address = serializers.CharField(allow_blank=True)


class OfflineSerializer(serializers.Serializer):
    accepted_at = serializers.DateTimeField(help_text="when the edge node accepted it without the gateway")
    capture = serializers.ChoiceField(
        choices=["pending", "captured", "declined", "refunded"],
        help_text="pending: the card is charged when the gateway answers again; declined: refused then",
    )


class OrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(
        choices=["reserved", "paid", "declined", "expired", "refunded", "accepted_offline", "capture_declined"]
    )
    lines = LineSerializer(many=True)
    subtotal = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="the lines' list prices")
    discount = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="what offers took off the lines: subtotal - the lines' totals"
    )
    shipping = ShippingSerializer()
    total = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="subtotal - discount + shipping.total")
    currency = serializers.CharField()
    receipt = serializers.CharField(allow_null=True, help_text="JWS compact (EdDSA), see /.well-known/jwks.json")
    created_at = serializers.DateTimeField()
    shipping_address = ShippingAddressSerializer(
        allow_null=True,
        help_text="A copy of the buyer's address as it was at the buy; later changes to the address do not "
        "touch it. null for orders placed before orders kept a copy, and for pickups.",
    )
    fulfilment = serializers.ChoiceField(choices=["delivery", "pickup"])
    pickup = PickupSerializer(allow_null=True, help_text="where a pickup order is picked up; null for delivery")
    offline = OfflineSerializer(
        required=False,
        help_text="Only on orders an edge node accepted while the payment gateway could not be reached "
        "(docs/buying.md, 'Offline selling'); absent on others.",
    )


class PaymentMethodInSerializer(serializers.Serializer):
    token = StrictCharField(max_length=255)


class PaymentMethodOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    brand = serializers.CharField()
    last4 = serializers.CharField()
    is_default = serializers.BooleanField()


class AddressSerializer(serializers.Serializer):
    name = StrictCharField(max_length=120)
    line1 = StrictCharField(max_length=200)
    line2 = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    city = StrictCharField(max_length=100)
    region = StrictCharField(max_length=100, required=False, allow_blank=True, default="")
    postal_code = StrictCharField(max_length=20)
    country = StrictCharField(min_length=2, max_length=2)

    def validate_country(self, value):
        if not re.fullmatch(r"[A-Za-z]{2}", value):
            raise serializers.ValidationError("Use an ISO 3166-1 alpha-2 code, e.g. DE.", code="invalid_country")
        return value.upper()


def _buy_body(data) -> dict:
    """The buy body, validated. The common shape (``sku`` and ``quantity``, both well formed)
    is checked here directly: BuySerializer cost 435 Python calls of a buy's ~5,100
    (cProfile). Anything else, valid or not, goes through BuySerializer, which gives the
    exact answer and error."""
    if isinstance(data, dict) and data.keys() <= {"sku", "quantity"}:
        sku, quantity = data.get("sku"), data.get("quantity", 1)
        if (
            isinstance(sku, str)
            and 0 < len(sku) <= 64
            and sku.isprintable()  # no NUL, control or surrogate characters
            and sku == sku.strip()
            and type(quantity) is int
            and 1 <= quantity <= settings.ORDER_MAX_QUANTITY
        ):
            return {"sku": sku, "quantity": quantity}
    return validated(BuySerializer, data)


def buy_outcome(status: int, data, *, replayed: bool) -> str:
    """The ``cc_buys_total`` outcome of a buy's answer (docs/operations.md, "Metrics")."""
    if replayed:
        return "replayed"
    if status < 300:
        return "accepted_offline" if isinstance(data, dict) and data.get("status") == "accepted_offline" else "created"
    code = data.get("code") if isinstance(data, dict) else None
    if code == "sold_out":
        return "sold_out"
    if status == 402:
        return "declined"
    if status == 429:
        return "rate_limited"
    if status == 503:
        return "unavailable"
    return "error" if status >= 500 else "refused"


class OrdersView(APIView):
    throttle_scope = "buy"

    def get_throttles(self):
        return [FixedWindowThrottle()] if self.request.method == "POST" else []

    # Every answer of the buy is counted here, once, by outcome (cc_buys_total): the
    # refusals raised anywhere below (authentication, throttle, services) included.
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method == "POST":
            buy_answered(
                buy_outcome(
                    response.status_code,
                    getattr(response, "data", None),
                    replayed=response.get("Idempotent-Replayed") == "true",
                )
            )
        return response

    def handle_exception(self, exc):
        try:
            return super().handle_exception(exc)
        except Exception:  # not answered by DRF: Django's 500 (finalize_response is not reached)
            if self.request.method == "POST":
                buy_answered("error")
            raise

    @extend_schema(responses={200: OrderSerializer(many=True)}, operation_id="orders_list")
    def get(self, request):
        orders = orders_of_buyer(buyer=request.user)[:100]
        return Response([order_body(o) for o in orders])

    @extend_schema(
        request=BuySerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="8-255 visible characters; a retry with the same key and body returns the first response",
            )
        ],
        responses={
            201: OrderSerializer,
            **error_responses(
                **{
                    "400": "invalid, malformed_request, idempotency_key_missing, idempotency_key_invalid, "
                    "duplicate_sku (with sku), several_shops, mixed_currencies, amount_too_large, "
                    "venue_required, pickup_required, venue_not_of_shop, bundle_mismatch",
                    "401": "not_authenticated",
                    "402": "payment_declined (stock and coupon returned)",
                    "403": "coupon_not_yours",
                    "404": "sku_not_found (with sku; also: not in the named shop or the stream's shop), "
                    "stream_not_found, coupon_not_found, venue_not_found, bundle_not_found",
                    "409": "bundle_not_available, pickup_not_available (with sku), "
                    "sold_out (with sku: the first line that cannot be had; nothing was taken; answered from the "
                    "process's memory, without the database, when a line's stock or deal is known to be at zero: "
                    "docs/buying.md, 'Sold out from memory'), "
                    "buyer_limit_exceeded (with sku, limit), checkout_incomplete, idempotency_key_in_flight, "
                    "ambiguous_sku (the code is used by several shops and no shop or stream was named), "
                    "reservation_expired, deal_not_open, coupon_used, coupon_expired, coupon_not_applicable, "
                    "coupon_cap_reached",
                    "422": "idempotency_key_reused",
                    "429": "rate_limited",
                    "503": "overloaded (with retry_after and the Retry-After header: the process was too busy "
                    "and refused the buy before doing anything; retry with the same Idempotency-Key and body, "
                    "docs/overload.md), payment_gateway_unavailable (nothing charged, key free to retry); on an "
                    "edge node, offline_over_floor_limit (with limit, currency; the same, the gateway being "
                    "unreachable and the total over OFFLINE_FLOOR_LIMIT; under it the buy answers 201 "
                    "accepted_offline)",
                }
            ),
        },
        operation_id="orders_create",
    )
    def post(self, request):
        key = request.headers.get("Idempotency-Key")
        if not key:
            raise IdempotencyKeyMissing()
        if not IDEMPOTENCY_KEY_RE.match(key):
            raise IdempotencyKeyInvalid()
        # From now on this key's answer is the database's: a retry with it must not be told
        # "sold out" from memory if it bought (apps/orders/soldout.py).
        key_sent(key)
        data = _buy_body(request.data)
        lines, context = checkout_request(data)
        outcome = order_place(
            buyer=request.user,
            lines=lines,
            shop_slug=context.shop,
            stream_id=context.stream,
            coupon=context.coupon,
            venue_id=context.venue,
            bundle_id=context.bundle,
            idempotency_key=key,
            fingerprint=request_fingerprint(data),
        )
        response = Response(outcome.body, status=outcome.status)
        if outcome.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class OrderDetailView(APIView):
    @extend_schema(responses={200: OrderSerializer, **error_responses(**{"404": "not_found"})})
    def get(self, request, pk: int):
        order = order_of_buyer(buyer=request.user, order_id=pk)
        if order is None:
            raise NotFound()
        return Response(order_body(order))


class PaymentMethodsView(APIView):
    @extend_schema(responses={200: PaymentMethodOutSerializer(many=True)}, operation_id="payment_methods_list")
    def get(self, request):
        return Response(checkout_profile(user=request.user)["payment_methods"])

    @extend_schema(
        request=PaymentMethodInSerializer,
        responses={201: PaymentMethodOutSerializer, **error_responses(**{"400": "invalid, invalid_payment_token"})},
        operation_id="payment_methods_create",
    )
    def post(self, request):
        data = validated(PaymentMethodInSerializer, request.data)
        method = payment_method_add(user=request.user, token=data["token"])
        return Response(
            {"id": method.pk, "brand": method.brand, "last4": method.last4, "is_default": method.is_default},
            status=201,
        )


class AddressView(APIView):
    @extend_schema(responses={200: AddressSerializer, **error_responses(**{"404": "not_found"})})
    def get(self, request):
        profile = checkout_profile(user=request.user)
        if profile["address"] is None:
            raise NotFound("No address saved yet.")
        return Response(profile["address"])

    @extend_schema(
        request=AddressSerializer, responses={200: AddressSerializer, **error_responses(**{"400": "invalid"})}
    )
    def put(self, request):
        data = validated(AddressSerializer, request.data)
        return Response(address_body(address_set(user=request.user, **data)))
