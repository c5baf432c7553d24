"""The catalog app's demo step: the demo shop's products, with stock."""

from __future__ import annotations

from .models import SKU
from .services import product_create

DEMO_PRODUCTS = [
    (
        "Drop tee",
        "Heavyweight cotton tee from tonight's drop.",
        [
            {"code": "TEE-S", "title": "Drop tee, S", "price": "29.00", "stock": 40, "per_buyer_limit": 2},
            {"code": "TEE-M", "title": "Drop tee, M", "price": "29.00", "stock": 60, "per_buyer_limit": 2},
            {"code": "TEE-L", "title": "Drop tee, L", "price": "29.00", "stock": 40, "per_buyer_limit": 2},
        ],
    ),
    (
        "Signed poster",
        "A2 print, signed live on stream.",
        [
            {"code": "POSTER", "price": "45.00", "stock": 25, "per_buyer_limit": 1},
        ],
    ),
    ("Sticker pack", "Six vinyl stickers.", [{"code": "STICKERS", "price": "6.50", "stock": 300}]),
]


def seed(context: dict) -> dict:
    shop = context["users"]["creator"].shop
    for title, description, skus in DEMO_PRODUCTS:
        if not SKU.objects.filter(shop=shop, code=skus[0]["code"]).exists():
            product_create(shop=shop, title=title, description=description, skus=skus)
    return {"summary": [f"shop {shop.name!r}: {SKU.objects.filter(shop=shop).count()} SKUs"]}
