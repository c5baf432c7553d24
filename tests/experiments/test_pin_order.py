"""``pin_order: personal`` served by this app's provider (docs/experiments.md, "Slot
providers"): a viewer in the personal arm gets the stream's pins ranked by the shop's
co-purchase model from their own history; the control arm and viewers the model knows
nothing about keep the creator's order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.catalog.models import SKU
from apps.experiments.assignment import forget_running
from apps.personalization.services import model_train
from apps.streams.extras import Viewer, snapshot_extras
from apps.streams.services import stream_create
from tests.factories import make_buyer
from tests.personalization.conftest import _fresh_model_cache, buy, buyers, shop  # noqa: F401

pytestmark = pytest.mark.django_db

CREATOR_ORDER = ["E", "D", "C", "B", "A"]
PERSONAL = [{"key": "control", "weight": 0.0}, {"key": "personal", "weight": 1.0}]
CONTROL = [{"key": "control", "weight": 1.0}, {"key": "personal", "weight": 0.0}]


@pytest.fixture
def drop(shop, buyers):  # noqa: F811
    """B is often bought with A; the drop pins E, D, C, B, A in that order."""
    for buyer in buyers[:4]:
        buy(buyer, shop, "A", "B")
    buy(buyers[4], shop, "D", "E")
    model_train(shop=shop)
    pins = [SKU.objects.get(shop=shop, code=code) for code in CREATOR_ORDER]
    return stream_create(shop=shop, title="Ranked drop", starts_at=timezone.now() + timedelta(hours=1), pins=pins)


def _extras(drop, user):
    forget_running()
    return snapshot_extras(Viewer(stream_id=drop.pk, shop_id=drop.shop_id, user_id=user.pk, session_key=None))


def test_the_personal_arm_gets_its_pins_ranked_from_its_history(drop, make_experiment):
    make_experiment(drop.shop.owner, slot="pin_order", variants=PERSONAL, name="Personal pins")
    fan = make_buyer()
    buy(fan, drop.shop, "A", days_ago=2)
    assert _extras(drop, fan) == {"experience": {"pin_order": "personal"}, "pin_order": ["B", "E", "D", "C", "A"]}
    newcomer = make_buyer()  # no history: the creator's order
    assert _extras(drop, newcomer) == {"experience": {"pin_order": "personal"}, "pin_order": CREATOR_ORDER}


def test_the_control_arm_gets_no_order_of_its_own(drop, make_experiment):
    make_experiment(drop.shop.owner, slot="pin_order", variants=CONTROL, name="Personal pins")
    fan = make_buyer()
    buy(fan, drop.shop, "A", days_ago=2)
    assert _extras(drop, fan) == {"experience": {"pin_order": "control"}}
