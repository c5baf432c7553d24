"""The coupon counters' hand-written statements against the real schema, as
tests/ops/test_hot_sql.py checks the buy's others: identifiers from the models, values as
parameters, and what they do (the lock and take parts, gated on an earlier part)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.geofences.models import Coupon, GeoOffer
from apps.pricing.registry import counter_source_for
from tests.factories import make_buyer, make_sku
from tests.ops.test_hot_sql import GATE_OPEN, GATE_SHUT, assert_from_models, explain, postgresql_only, run

from .coupon_helpers import issue, make_offer

pytestmark = pytest.mark.django_db


def _coupon(cap=None):
    buyer, sku = make_buyer(), make_sku()
    now = timezone.now()
    coupon = issue(buyer, make_offer(sku.shop, cap=cap, starts_at=now - timedelta(hours=1)), at=now)
    return buyer, coupon, now


def test_coupon_take_statement():
    buyer, coupon, now = _coupon()
    source = counter_source_for("coupon")
    sql, params = source.take_statement(id=coupon.pk, buyer_id=buyer.pk, now=now, after=None)
    assert_from_models(sql, Coupon)
    explain(sql, params)
    assert run(*source.take_statement(id=coupon.pk, buyer_id=buyer.pk + 1, now=now, after=None)) == []  # not theirs
    later = coupon.expires_at + timedelta(seconds=1)
    assert run(*source.take_statement(id=coupon.pk, buyer_id=buyer.pk, now=later, after=None)) == []  # expired
    assert run(sql, params) == [(coupon.pk,)]
    assert run(sql, params) == []  # used
    assert Coupon.objects.get(pk=coupon.pk).redeemed_at is not None


def test_counter_statements_after_an_earlier_part():
    buyer, coupon, now = _coupon(cap=1)
    for name, target in (("coupon", coupon.pk), ("geo_offer", coupon.offer_id)):
        source = counter_source_for(name)
        model = Coupon if name == "coupon" else GeoOffer
        lock_sql, lock_params = source.lock_statement(id=target, buyer_id=buyer.pk, now=now, after="gate")
        take_sql, take_params = source.take_statement(id=target, buyer_id=buyer.pk, now=now, after="gate")
        assert_from_models(lock_sql, model)
        assert_from_models(take_sql, model)
        postgresql_only()
        assert run(GATE_SHUT + lock_sql, lock_params) == []
        assert run(GATE_SHUT + take_sql, take_params) == []
        assert run(GATE_OPEN + lock_sql, lock_params) == [(target,)]
        assert run(GATE_OPEN + take_sql, take_params) == [(target,)]
        assert run(GATE_OPEN + take_sql, take_params) == []  # used / the cap reached
    assert GeoOffer.objects.get(pk=coupon.offer_id).redemptions_left == 0
