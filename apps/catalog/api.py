"""Catalog API: creators build products and set stock; anyone reads a SKU."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from creatorcommerce.api import IsCreator, error_responses, validated
from creatorcommerce.fields import StrictCharField, StrictDecimalField, StrictIntegerField

from .exceptions import LocationNotFound
from .models import CURRENCY_VALIDATOR, SKU_CODE_VALIDATOR, Location, Product
from .selectors import product_detail, sku_of_shop, sku_public, venue_stock
from .services import product_create, stock_adjust

MAX_STOCK = 10_000_000


class SkuInSerializer(serializers.Serializer):
    code = StrictCharField(max_length=64, validators=[SKU_CODE_VALIDATOR])
    title = StrictCharField(max_length=200, required=False, allow_blank=True)
    price = StrictDecimalField(max_digits=12, decimal_places=2, min_value=0)
    currency = StrictCharField(max_length=3, required=False, validators=[CURRENCY_VALIDATOR])
    stock = StrictIntegerField(min_value=0, max_value=MAX_STOCK, required=False, default=0)
    per_buyer_limit = StrictIntegerField(min_value=1, max_value=10_000, required=False, allow_null=True)


class ProductInSerializer(serializers.Serializer):
    title = StrictCharField(max_length=200)
    description = StrictCharField(required=False, allow_blank=True, default="", max_length=10_000, multiline=True)
    skus = SkuInSerializer(many=True, allow_empty=False, max_length=100)


class StockRowSerializer(serializers.Serializer):
    location = serializers.IntegerField()
    location_name = serializers.CharField()
    available = serializers.IntegerField()


class SkuOutSerializer(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    per_buyer_limit = serializers.IntegerField(allow_null=True)
    available = serializers.IntegerField()
    stock = StockRowSerializer(many=True)


class ProductOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    shop = serializers.IntegerField()
    skus = SkuOutSerializer(many=True)
    created_at = serializers.DateTimeField()


class SkuPublicSerializer(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    available = serializers.IntegerField()
    per_buyer_limit = serializers.IntegerField(allow_null=True)


class StockInSerializer(serializers.Serializer):
    location = StrictIntegerField(required=False, min_value=1)
    set = StrictIntegerField(required=False, min_value=0, max_value=MAX_STOCK)
    add = StrictIntegerField(required=False, min_value=-MAX_STOCK, max_value=MAX_STOCK)

    def validate(self, attrs):
        if ("set" in attrs) == ("add" in attrs):
            raise serializers.ValidationError("Give exactly one of 'set' or 'add'.", code="set_or_add")
        return attrs


class StockOutSerializer(serializers.Serializer):
    sku = serializers.CharField()
    location = serializers.IntegerField()
    available = serializers.IntegerField()


class ProductsView(APIView):
    permission_classes = [IsCreator]

    @extend_schema(responses={200: ProductOutSerializer(many=True)}, operation_id="products_list")
    def get(self, request):
        products = Product.objects.filter(shop=request.user.shop).order_by("-created_at")[:200]
        return Response([ProductOutSerializer(product_detail(product=p)).data for p in products])

    @extend_schema(
        request=ProductInSerializer,
        responses={
            201: ProductOutSerializer,
            **error_responses(
                **{"400": "invalid, malformed_request", "403": "permission_denied", "409": "duplicate_sku_code"}
            ),
        },
        operation_id="products_create",
    )
    def post(self, request):
        data = validated(ProductInSerializer, request.data)
        product = product_create(shop=request.user.shop, **data)
        return Response(ProductOutSerializer(product_detail(product=product)).data, status=201)


class ProductDetailView(APIView):
    permission_classes = [IsCreator]

    @extend_schema(responses={200: ProductOutSerializer, **error_responses(**{"404": "not_found"})})
    def get(self, request, pk: int):
        product = Product.objects.filter(shop=request.user.shop, pk=pk).first()
        if product is None:
            raise NotFound()
        return Response(ProductOutSerializer(product_detail(product=product)).data)


class SkuDetailView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []  # public, and cheap: no session lookup

    @extend_schema(
        parameters=[OpenApiParameter("shop", str, description="shop slug, when several shops use the code")],
        responses={200: SkuPublicSerializer, **error_responses(**{"404": "sku_not_found", "409": "ambiguous_sku"})},
    )
    def get(self, request, code: str):
        return Response(SkuPublicSerializer(sku_public(code=code, shop_slug=request.query_params.get("shop"))).data)


class SkuStockView(APIView):
    permission_classes = [IsCreator]

    @extend_schema(
        request=StockInSerializer,
        responses={
            200: StockOutSerializer,
            **error_responses(
                **{
                    "400": "invalid",
                    "403": "permission_denied",
                    "404": "sku_not_found, location_not_found",
                    "409": "sold_out (removing more than is available), "
                    "stock_limit_exceeded (more units than a stock level may hold), "
                    "stock_owned_by_edge (a venue whose stock an edge node owns: change it there)",
                }
            ),
        },
    )
    def post(self, request, code: str):
        data = validated(StockInSerializer, request.data)
        shop = request.user.shop
        sku = sku_of_shop(shop=shop, code=code)
        location = None
        if "location" in data:
            location = Location.objects.filter(shop=shop, pk=data["location"]).first()
            if location is None:
                raise LocationNotFound()
        with transaction.atomic():
            level = stock_adjust(sku=sku, location=location, set_to=data.get("set"), add=data.get("add"))
        return Response({"sku": sku.code, "location": level.location_id, "available": level.available})


class VenueStockSerializer(serializers.Serializer):
    stock = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="units at the venue itself, by SKU code (active SKUs with a row there)",
    )


class VenueStockView(APIView):
    """``GET /api/v1/venues/{id}/stock/``: a pop-up venue's own stock (public; the id is the
    venue's location id; docs/geofences.md)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []  # public, and cheap: no session lookup

    @extend_schema(
        responses={200: VenueStockSerializer, **error_responses(**{"404": "venue_not_found"})},
        operation_id="venues_stock",
    )
    def get(self, request, pk: int):
        return Response({"stock": venue_stock(venue_id=pk)})
