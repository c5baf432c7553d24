"""Seed the benchmark database through the project's own services (run by run.py as a
subprocess, with the bench environment: DATABASE_URL of the fresh bench database, ...).

Creates a creator and their shop, one SKU per buy run (each with its own stock, so that the
checks after each rate are exact), three SKUs of one product per 3-line buy run
(``--buy3-sku``), a SKU for the fan-out pinned on a live stream, a flash deal per stampede
(``--deal name=quantity``: a SKU holding exactly that many units, pinned on the same stream,
and an open deal on all of them at one per buyer), and N buyers with a saved card (tok_ok)
and an address. Every user gets an allauth headless
session (the ``X-Session-Token`` an app client sends); sessions are created here with
Django's ``login()`` rather than through the login endpoint, because PBKDF2 makes each
password check cost ~0.5 s on purpose. For the same reason the password is hashed once and
the hash given to every buyer.

    python bench/seed.py --buyers 100 --buy-sku daphne=8000 --buy-sku uvicorn=8000 \
        --fan-stock 1000000 --out seed.json

The project's code comes from ``BENCH_APP_TREE`` when set (run.py's ``--tree``: another
checkout), else from this one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from importlib import import_module
from pathlib import Path

ROOT = Path(os.environ.get("BENCH_APP_TREE") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorcommerce.settings")

BUY_PER_BUYER_LIMIT = 1_000_000  # a drop with a per-buyer limit: the allowance upsert is on the path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--buyers", type=int, default=100)
    parser.add_argument("--buy-sku", action="append", default=[], help="name=stock, one per buy run")
    parser.add_argument(
        "--buy3-sku", action="append", default=[], help="name=stock: three SKUs (stock each) for a 3-line buy run"
    )
    parser.add_argument(
        "--deal", action="append", default=[], help="name=quantity: a pinned SKU with an open flash deal on all of it"
    )
    parser.add_argument("--fan-stock", type=int, default=1_000_000)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import login
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.http import HttpRequest
    from django.utils import timezone

    from apps.accounts.models import User
    from apps.accounts.services import user_grant_role
    from apps.catalog.models import StockLevel
    from apps.catalog.services import product_create
    from apps.orders.services import address_set, payment_method_add
    from apps.streams.models import Stream
    from apps.streams.services import deal_open, deal_schedule, pin_add, stream_start
    from creatorcommerce.spine import fanout

    t0 = time.monotonic()
    session_store = import_module(settings.SESSION_ENGINE).SessionStore
    password_hash = make_password("bench-password-not-secret")

    def session_token(user) -> str:
        request = HttpRequest()
        request.META["REMOTE_ADDR"] = "127.0.0.1"
        request.session = session_store()
        login(request, user, backend="apps.accounts.backends.ModelBackend")
        request.session.save()
        return request.session.session_key

    creator = User.objects.create(email="bench-creator@bench.test", password=password_hash, display_name="Bench")
    creator = user_grant_role(email=creator.email, role="creator", shop_name="Bench Studio")
    shop = User.objects.get(pk=creator.pk).shop

    skus = {}
    for spec in args.buy_sku:
        name, _, stock = spec.partition("=")
        code = f"BUY-{name.upper()}"
        product_create(
            shop=shop,
            title=f"Drop for {name}",
            skus=[{"code": code, "price": "25.00", "stock": int(stock), "per_buyer_limit": BUY_PER_BUYER_LIMIT}],
        )
        level = StockLevel.objects.get(sku__shop=shop, sku__code=code)
        skus[name] = {"code": code, "level_id": level.pk, "sku_id": level.sku_id, "initial": level.available}

    skus3 = {}
    for spec in args.buy3_sku:
        name, _, stock = spec.partition("=")
        codes = [f"BUY3-{name.upper()}-{size}" for size in ("S", "M", "L")]
        product_create(
            shop=shop,
            title=f"Three sizes for {name}",
            skus=[
                {"code": code, "price": "25.00", "stock": int(stock), "per_buyer_limit": BUY_PER_BUYER_LIMIT}
                for code in codes
            ],
        )
        skus3[name] = []
        for code in codes:
            level = StockLevel.objects.get(sku__shop=shop, sku__code=code)
            skus3[name].append({"code": code, "level_id": level.pk, "sku_id": level.sku_id, "initial": level.available})

    product_create(shop=shop, title="Pinned tee", skus=[{"code": "FAN-TEE", "price": "30.00", "stock": args.fan_stock}])
    fan_level = StockLevel.objects.get(sku__shop=shop, sku__code="FAN-TEE")
    stream = Stream.objects.create(shop=shop, title="Bench live", starts_at=timezone.now())
    stream_start(stream=stream)
    pin_add(stream=stream, sku=fan_level.sku)

    deals = {}
    for spec in args.deal:
        name, _, quantity = spec.partition("=")
        code = f"DEAL-{name.upper()}"
        product = product_create(
            shop=shop, title=f"Deal for {name}", skus=[{"code": code, "price": "40.00", "stock": int(quantity)}]
        )
        sku = product.skus.get()
        pin_add(stream=stream, sku=sku)
        now = timezone.now()
        with transaction.atomic():
            deal = deal_schedule(
                stream=stream,
                sku=sku,
                price="10.00",
                quantity=int(quantity),
                opens_at=now,
                closes_at=now + timedelta(hours=6),
                per_buyer_limit=1,
            )
            deal = deal_open(deal=deal, now=now)
        level = StockLevel.objects.get(sku=sku)
        deals[name] = {
            "code": code,
            "deal_id": deal.pk,
            "quantity": deal.remaining,
            "level_id": level.pk,
            "sku_id": sku.pk,
            "shelf_after_open": level.available,
        }

    buyers = []
    for i in range(args.buyers):
        with transaction.atomic():
            buyer = User.objects.create(
                email=f"bench-buyer-{i:05d}@bench.test", password=password_hash, display_name=f"Buyer {i}"
            )
        payment_method_add(user=buyer, token="tok_ok")
        address_set(user=buyer, name=f"Buyer {i}", line1="1 Bench St", city="Berlin", postal_code="10115", country="DE")
        buyers.append(session_token(buyer))

    fanout.drain()
    out = {
        "creator_token": session_token(creator),
        "shop_id": shop.pk,
        "buyer_tokens": buyers,
        "buy_skus": skus,
        "buy3_skus": skus3,
        "deals": deals,
        "fan": {
            "code": "FAN-TEE",
            "level_id": fan_level.pk,
            "sku_id": fan_level.sku_id,
            "initial": fan_level.available,
            "stream_id": stream.pk,
        },
        "seconds": round(time.monotonic() - t0, 2),
    }
    Path(args.out).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
