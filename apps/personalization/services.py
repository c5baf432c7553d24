"""The personalisation app's one write: training a shop's co-purchase model (docs/personalization.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.accounts.models import Shop
from apps.orders.models import Order

from . import model_cache
from .models import ItemModel, Neighbour
from .selectors import SOLD, last_sold_order_id, training_rows
from .training import co_purchase


def model_train(*, shop: Shop, now: datetime | None = None) -> ItemModel:
    """Train ``shop``'s model from its sold orders and replace the stored one, header and
    neighbours, in one transaction (a reader sees the old model or the new one, never half).
    Once committed, this process drops its loaded copy and the generation number tells the
    others to reload theirs (``model_cache``). Training emits no event: the model is the
    node's own and nothing outside it reacts to it (docs/personalization.md, "Privacy")."""
    now = now or timezone.now()
    window_days = settings.PERSONALIZATION_WINDOW_DAYS
    half_life_days = settings.PERSONALIZATION_HALF_LIFE_DAYS
    last_order_id = last_sold_order_id(shop_id=shop.pk)
    rows = training_rows(shop_id=shop.pk, now=now, window_days=window_days)
    trained = co_purchase(rows, now=now, half_life_days=half_life_days, top_k=settings.PERSONALIZATION_TOP_K)
    with transaction.atomic():
        model = ItemModel.objects.select_for_update().filter(shop=shop).first()
        fields = {
            "trained_at": now,
            "orders": trained.orders,
            "buyers": trained.buyers,
            "items": len(trained.neighbours),
            "pairs": sum(len(n) for n in trained.neighbours.values()),
            "last_order_id": last_order_id,
            "half_life_days": half_life_days,
            "window_days": window_days,
        }
        if model is None:
            model = ItemModel.objects.create(shop=shop, version=1, **fields)
        else:
            model.version += 1
            for name, value in fields.items():
                setattr(model, name, value)
            model.save()
            model.neighbours.all().delete()
        Neighbour.objects.bulk_create(
            Neighbour(model=model, sku_id=sku, neighbour_id=other, rank=rank, score=score)
            for sku, found in trained.neighbours.items()
            for rank, (other, score) in enumerate(found)
        )
        model_cache.invalidate_on_commit(shop.pk)
    return model


def shops_to_train(*, now: datetime | None = None) -> list[Shop]:
    """Shops with a sold order past their model's (or with sold orders and no model yet),
    and shops whose model is older than PERSONALIZATION_MAX_AGE_HOURS (the decay moved on)."""
    now = now or timezone.now()
    stale_before = now - timedelta(hours=settings.PERSONALIZATION_MAX_AGE_HOURS)
    models = {m.shop_id: m for m in ItemModel.objects.all()}
    due = []
    latest = Order.objects.filter(status__in=SOLD).values("shop_id").order_by().annotate(last=Max("pk"))
    for row in latest:
        model = models.get(row["shop_id"])
        if model is None or row["last"] > model.last_order_id or model.trained_at < stale_before:
            due.append(row["shop_id"])
    return list(Shop.objects.filter(pk__in=due).order_by("pk"))


def models_train(*, now: datetime | None = None) -> dict[str, int]:
    """Beat's run (``tasks.train``): train every shop that is due."""
    trained = 0
    for shop in shops_to_train(now=now):
        model_train(shop=shop, now=now)
        trained += 1
    return {"trained": trained}
