"""Training (docs/personalization.md, "The model"): co-purchase counts in the same order and
by the same buyer, decayed and normalised (cosine), top-k per item, written in one
transaction with item ids only."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from apps.personalization.models import ItemModel, Neighbour
from apps.personalization.services import model_train, models_train, shops_to_train
from apps.personalization.tasks import train
from apps.personalization.training import BUYER_WEIGHT, co_purchase
from tests.personalization.conftest import buy

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_co_purchase_counts_same_order_and_same_buyer_pairs_with_cosine_normalisation():
    rows = [
        (1, 100, 1, NOW),  # order 1 of buyer 100: items 1 and 2 together
        (1, 100, 2, NOW),
        (2, 101, 1, NOW),  # buyer 101 buys 1, then 3 in another order
        (3, 101, 3, NOW),
    ]
    trained = co_purchase(rows, now=NOW, half_life_days=30, top_k=5)
    b = BUYER_WEIGHT
    norm1 = 2 + 2 * b  # in two orders, bought by two buyers
    norm2 = 1 + b
    norm3 = 1 + b
    assert trained.orders == 3 and trained.buyers == 2
    assert trained.neighbours[1] == [
        (2, pytest.approx((1 + b) / math.sqrt(norm1 * norm2))),  # same order and same buyer
        (3, pytest.approx(b / math.sqrt(norm1 * norm3))),  # same buyer only
    ]
    assert trained.neighbours[2] == [(1, pytest.approx((1 + b) / math.sqrt(norm1 * norm2)))]
    assert trained.neighbours[3] == [(1, pytest.approx(b / math.sqrt(norm1 * norm3)))]


def test_older_purchases_weigh_less_and_top_k_breaks_ties_by_id():
    old = NOW - timedelta(days=60)  # two half-lives: a quarter of the weight
    rows = [(1, 1, 10, NOW), (1, 1, 11, NOW), (2, 2, 10, old), (2, 2, 12, old)]
    trained = co_purchase(rows, now=NOW, half_life_days=30, top_k=1)
    assert [n for n, _ in trained.neighbours[10]] == [11]  # the recent pair wins; k = 1
    tied = co_purchase([(1, 1, 5, NOW), (1, 1, 7, NOW), (1, 1, 6, NOW)], now=NOW, half_life_days=30, top_k=2)
    assert [n for n, _ in tied.neighbours[5]] == [6, 7]  # equal scores: lower id first


@pytest.mark.postgres
@pytest.mark.django_db
def test_training_from_orders_gives_the_expected_neighbours_and_stores_no_viewer(shop, buyers):
    sku = {s.code: s for s in shop.skus.all()}
    for buyer in buyers[:4]:
        buy(buyer, shop, "A", "B")  # A and B, often together
    buy(buyers[4], shop, "A", "C")
    buy(buyers[5], shop, "D")
    buy(buyers[5], shop, "E", days_ago=3)  # D and E: the same buyer, two orders

    model = model_train(shop=shop)
    assert (model.version, model.orders, model.buyers, model.items) == (1, 7, 6, 5)
    rows = Neighbour.objects.filter(model=model)
    first = {n.sku.code: n.neighbour.code for n in rows.filter(rank=0).select_related("sku", "neighbour")}
    assert first == {"A": "B", "B": "A", "C": "A", "D": "E", "E": "D"}
    assert list(rows.filter(sku=sku["A"]).values_list("neighbour__code", flat=True)) == ["B", "C"]
    assert model.pairs == rows.count() == 2 + 1 + 1 + 1 + 1

    # Item-item statistics only: no column of the model refers to a user.
    for stored in (ItemModel, Neighbour):
        targets = {f.related_model._meta.label for f in stored._meta.get_fields() if f.is_relation and f.concrete}
        assert "accounts.User" not in targets
    assert targets == {"personalization.ItemModel", "catalog.SKU"}


@pytest.mark.postgres
@pytest.mark.django_db
def test_retraining_replaces_the_model_and_beat_trains_only_shops_with_new_orders(shop, buyers, settings):
    buy(buyers[0], shop, "A", "B")
    assert shops_to_train() == [shop]
    first = model_train(shop=shop)
    assert shops_to_train() == []  # nothing new
    assert models_train() == {"trained": 0}

    buy(buyers[1], shop, "A", "C")
    assert shops_to_train() == [shop]
    call_command("personalization_train")  # what beat's task runs
    assert train.delay().get() == {"trained": 0}  # the beat task itself: nothing new since
    assert settings.CELERY_BEAT_SCHEDULE["personalization-train"]["task"] == train.name
    model = ItemModel.objects.get(shop=shop)
    assert (model.pk, model.version, model.orders) == (first.pk, 2, 2)
    assert Neighbour.objects.filter(model__shop=shop).count() == 4  # A-B, A-C both ways: the old rows went


@pytest.mark.postgres
@pytest.mark.django_db
def test_only_sold_orders_count_and_the_command_names_a_shop(shop, buyers):
    from apps.orders.models import Order

    refunded = buy(buyers[0], shop, "A", "B")
    Order.objects.filter(pk=refunded.pk).update(status=Order.Status.REFUNDED)
    buy(buyers[1], shop, "C", "D")
    call_command("personalization_train", shop=shop.slug)
    assert list(Neighbour.objects.filter(model__shop=shop).values_list("sku__code", "neighbour__code")) == [
        ("C", "D"),
        ("D", "C"),
    ]
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no shop"):
        call_command("personalization_train", shop="no-such-shop")


@pytest.mark.postgres
@pytest.mark.django_db
def test_an_old_model_is_retrained_even_without_new_orders(shop, buyers, settings):
    from datetime import timedelta

    from django.utils import timezone

    buy(buyers[0], shop, "A", "B")
    model_train(shop=shop)
    assert shops_to_train() == []
    later = timezone.now() + timedelta(hours=settings.PERSONALIZATION_MAX_AGE_HOURS + 1)
    assert shops_to_train(now=later) == [shop]
    assert models_train(now=later) == {"trained": 1}
    assert ItemModel.objects.get(shop=shop).version == 2
