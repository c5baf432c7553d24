"""The exact events of awarding: ``badge.awarded`` (to the shop, and to the stream's
viewers for an award won in a stream) for granted awards only, with the audit entry."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.loyalty.awards import AwardNotPending, award_create, award_grant
from apps.loyalty.models import Award
from tests.factories import StaffFactory
from tests.helpers import captured_events

from .conftest import ON_ORDER, buy, handle

pytestmark = pytest.mark.django_db


def _payload(award, badge, buyer, stream):
    return {
        "award": award.pk,
        "badge": badge.pk,
        "shop": badge.shop_id,
        "user": buyer.pk,
        "stream": stream.pk if stream else None,
        "name": badge.name,
        "icon": badge.icon,
        "display_name": buyer.display_name or None,
    }


def test_an_automatic_award_emits_badge_awarded_to_shop_and_stream(drop, buyers, make_badge):
    badge = make_badge("first_buyers", count=5, name="Early supporter", icon="🚀")
    order = buy(buyers[0], stream=drop)
    with captured_events() as events:
        handle("order.placed", ON_ORDER, order=order.pk)
    award = Award.objects.get(badge=badge)
    assert events == [
        ("badge.awarded", _payload(award, badge, buyers[0], drop), [f"shop.{badge.shop_id}", f"stream.{drop.pk}"])
    ]
    entry = AuditEntry.objects.get(action="badge.granted", object_id=str(award.pk))
    assert entry.actor is None and entry.shop_id == badge.shop_id and entry.object_type == "loyalty.award"
    assert entry.details["approved"] is False and entry.details["perks"] == []


def test_the_name_is_null_when_the_buyer_shows_none(shop, make_badge):
    from tests.factories import make_buyer

    badge = make_badge("repeat", count=1)
    shy = make_buyer(display_name="")
    with captured_events() as events:
        award, created = award_create(badge=badge, user=shy, scope="", stream_id=None, now=timezone.now())
    assert created
    assert events == [("badge.awarded", _payload(award, badge, shy, None), [f"shop.{shop.pk}"])]
    assert events[0][1]["display_name"] is None


def test_pending_awards_emit_nothing_until_approved(drop, buyers, make_badge):
    badge = make_badge("first_buyers", count=5, needs_review=True)
    order = buy(buyers[0], stream=drop)
    with captured_events() as events:
        handle("order.placed", ON_ORDER, order=order.pk)
    assert events == []
    award = Award.objects.get(badge=badge)
    assert award.status == "pending" and not AuditEntry.objects.filter(action="badge.granted").exists()

    staff, now = StaffFactory(), timezone.now()
    with captured_events() as events:
        granted = award_grant(award=award, actor=staff, now=now)
    assert granted.status == "granted" and granted.decided_by == staff and granted.decided_at == now
    assert events == [
        ("badge.awarded", _payload(award, badge, buyers[0], drop), [f"shop.{badge.shop_id}", f"stream.{drop.pk}"])
    ]
    # An approval is one audit entry, ``badge.approved`` (not also ``badge.granted``).
    entry = AuditEntry.objects.get(object_id=str(award.pk))
    assert (entry.action, entry.actor, entry.details["approved"]) == ("badge.approved", staff, True)
    # Granting again is refused and emits nothing.
    with captured_events() as events, pytest.raises(AwardNotPending):
        award_grant(award=award, actor=staff, now=now)
    assert events == []


def test_awarding_twice_creates_and_emits_once(shop, buyers, make_badge):
    badge = make_badge("repeat", count=1)
    with captured_events() as events:
        first = award_create(badge=badge, user=buyers[0], scope="", stream_id=None, now=timezone.now())
        second = award_create(badge=badge, user=buyers[0], scope="", stream_id=None, now=timezone.now())
    assert first[1] is True and second == (first[0], False)
    assert [e[0] for e in events] == ["badge.awarded"]
