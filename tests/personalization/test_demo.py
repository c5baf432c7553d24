"""The personalisation demo step (docs/personalization.md, "Demo"): regulars' co-purchases
bought through the buy path, and the model trained once at the end of seeding, so the demo
drop's pins are ranked for a viewer with history and kept in order for one without."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.accounts.models import User
from apps.orders.models import Order
from apps.personalization.demo import DEMO_CO_PURCHASES, DEMO_PINS, DEMO_RANKED_VIEWER
from apps.personalization.models import ItemModel, Neighbour
from apps.personalization.ranker import rank_pins, suggest_bundle
from apps.streams.models import Stream
from tests.helpers import events_since, last_event_id

pytestmark = pytest.mark.postgres


@pytest.mark.django_db(transaction=True)
def test_the_demo_trains_a_model_the_demo_drops_pins_can_be_ranked_by():
    call_command("seed_demo")
    drop = Stream.objects.get(title="Friday night drop")
    shop = drop.shop
    assert list(drop.pins.values_list("sku__code", flat=True)) == DEMO_PINS
    placed = Order.objects.filter(shop=shop, idempotency_key__startswith="demo-copurchase-")
    assert placed.count() == len(DEMO_CO_PURCHASES) and set(placed.values_list("status", flat=True)) == {"paid"}

    model = ItemModel.objects.get(shop=shop)
    assert model.version == 1 and model.orders == Order.objects.filter(shop=shop, status="paid").count()
    first = dict(Neighbour.objects.filter(model=model, rank=0).values_list("sku__code", "neighbour__code"))
    assert first == {"TEE-S": "STICKERS", "TEE-L": "POSTER", "POSTER": "TEE-L", "STICKERS": "POSTER"}
    assert "TEE-M" not in first  # never sold: no neighbours

    fan = User.objects.get(email=DEMO_RANKED_VIEWER)  # bought the poster
    assert rank_pins(shop.pk, fan.pk, DEMO_PINS) == ["TEE-L", "STICKERS", "TEE-S", "TEE-M", "POSTER"]
    viewer = User.objects.get(email="viewer@demo.local")  # no orders yet
    assert rank_pins(shop.pk, viewer.pk, DEMO_PINS) == DEMO_PINS
    assert rank_pins(shop.pk, None, DEMO_PINS) == DEMO_PINS
    assert suggest_bundle(shop.pk, None, "POSTER", 2) == ["TEE-L", "STICKERS"]

    again = last_event_id()
    call_command("seed_demo")
    assert placed.count() == len(DEMO_CO_PURCHASES) and events_since(again, "order.placed") == []
    assert ItemModel.objects.get(shop=shop).version == 2  # retrained, from the same orders
