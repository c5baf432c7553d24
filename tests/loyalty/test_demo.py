"""The loyalty demo step (docs/loyalty.md): the demo drop's two badges (one needing
review, with a 10 % perk), two tiers, and a queue of granted and pending awards; running
seed_demo twice duplicates nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command

from apps.loyalty.models import Award, Badge, Tier
from apps.streams.models import Stream

pytestmark = pytest.mark.django_db


def _snapshot():
    return (
        list(Badge.objects.order_by("pk").values_list("pk", "name", "stream_id")),
        list(Tier.objects.order_by("pk").values_list("pk", "name", "threshold")),
        list(Award.objects.order_by("pk").values_list("pk", "badge__name", "user__email", "status")),
    )


def test_the_demo_has_badges_tiers_and_a_queue_and_seeding_twice_duplicates_nothing():
    call_command("seed_demo")
    drop = Stream.objects.get(title="Friday night drop")

    early = Badge.objects.get(name="Early supporter")
    assert (early.shop, early.rule, early.count, early.stream, early.needs_review, early.perk_kind) == (
        drop.shop, "first_buyers", 1000, drop, False, ""
    )  # fmt: skip
    superfan = Badge.objects.get(name="Superfan")
    assert (superfan.stream, superfan.needs_review, superfan.perk_kind, superfan.perk_percent) == (
        drop, True, "percent_off", Decimal("10.00")
    )  # fmt: skip
    assert list(Tier.objects.filter(shop=drop.shop).values_list("name", "threshold", "period")) == [
        ("Silver", Decimal("50.00"), "lifetime"),
        ("Gold", Decimal("200.00"), "lifetime"),
    ]
    statuses = sorted(Award.objects.values_list("badge__name", "user__email", "status"))
    assert statuses == [
        ("Early supporter", "fan1@demo.local", "granted"),
        ("Early supporter", "fan2@demo.local", "granted"),
        ("Superfan", "fan1@demo.local", "pending"),
        ("Superfan", "fan2@demo.local", "pending"),
        ("Superfan", "fan3@demo.local", "pending"),
    ]
    assert set(Award.objects.values_list("scope", flat=True)) == {f"stream:{drop.pk}"}
    assert not Award.objects.filter(user__email="viewer@demo.local").exists()  # earns them live

    before = _snapshot()
    call_command("seed_demo")
    assert _snapshot() == before
