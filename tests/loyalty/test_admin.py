"""The badge admin: a creator's own badges and drops only, rule requirements as field
errors, written through badge_save."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.loyalty.badges import badge_save
from apps.loyalty.models import Badge
from apps.streams.models import Stream
from tests.factories import CreatorFactory, StaffFactory
from tests.helpers import page_form

pytestmark = pytest.mark.django_db

ADD = "/admin/loyalty/badge/add/"


def _form(client, **changes) -> dict:
    data = page_form(client, ADD)
    data.update({"name": "Early supporter", "icon": "🚀", "rule": "first_buyers", "count": "100", "is_active": "on"})
    data.update(changes)
    return data


def test_creator_adds_a_badge_of_their_shop(client):
    creator = CreatorFactory()
    client.force_login(creator)
    response = client.post(ADD, _form(client))
    assert response.status_code == 302, response.content.decode()[:2000]
    badge = Badge.objects.get(name="Early supporter")
    assert (badge.shop_id, badge.rule, badge.count) == (creator.shop.pk, "first_buyers", 100)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"count": ""}, "count"),
        ({"rule": "deal_speed", "count": ""}, "seconds"),
        ({"rule": "spend", "count": "", "amount": "50.00"}, "period_days"),
        ({"rule": "spend", "count": "", "period_days": "30"}, "amount"),
        ({"perk_kind": "percent_off"}, "perk_percent"),
        ({"perk_kind": "early_access"}, "perk_minutes"),
        ({"icon": " "}, "icon"),
    ],
)
def test_rule_requirements_are_field_errors(client, changes, field):
    creator = CreatorFactory()
    client.force_login(creator)
    response = client.post(ADD, _form(client, **changes))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Badge.objects.exists()


def test_duplicate_name_is_a_field_error(client):
    creator = CreatorFactory()
    badge_save(shop=creator.shop, name="Early supporter", rule="repeat", count=2)
    client.force_login(creator)
    response = client.post(ADD, _form(client))
    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors


def test_drop_choices_are_the_creators_own_streams(client):
    creator, other = CreatorFactory(), CreatorFactory()
    mine = Stream.objects.create(shop=creator.shop, title="Mine", starts_at=timezone.now())
    theirs = Stream.objects.create(shop=other.shop, title="Theirs", starts_at=timezone.now())
    client.force_login(creator)
    page = client.get(ADD)
    choices = list(page.context["adminform"].form.fields["stream"].queryset)
    assert choices == [mine]
    response = client.post(ADD, _form(client, stream=str(theirs.pk)))
    assert response.status_code == 200 and "stream" in response.context["adminform"].form.errors
    response = client.post(ADD, _form(client, stream=str(mine.pk)))
    assert response.status_code == 302
    assert Badge.objects.get().stream == mine


def test_a_drop_on_a_shop_wide_rule_is_a_field_error():
    creator = CreatorFactory()
    stream = Stream.objects.create(shop=creator.shop, title="Mine", starts_at=timezone.now())
    from apps.loyalty.badges import BadgeInvalid

    with pytest.raises(BadgeInvalid) as raised:
        badge_save(shop=creator.shop, name="Loyal", rule="repeat", count=3, stream=stream)
    assert "stream" in raised.value.details["fields"]


def test_creators_see_only_their_badges_and_staff_see_all(client):
    creator, other = CreatorFactory(), CreatorFactory()
    badge_save(shop=creator.shop, name="Mine", rule="repeat", count=2)
    theirs = badge_save(shop=other.shop, name="Theirs", rule="repeat", count=2)
    client.force_login(creator)
    listing = client.get("/admin/loyalty/badge/").content.decode()
    assert "Mine" in listing and "Theirs" not in listing
    assert client.get(f"/admin/loyalty/badge/{theirs.pk}/change/").status_code in (302, 404)
    client.force_login(StaffFactory())
    listing = client.get("/admin/loyalty/badge/").content.decode()
    assert "Mine" in listing and "Theirs" in listing


def test_creator_edits_a_badge_through_the_service(client):
    creator = CreatorFactory()
    badge = badge_save(shop=creator.shop, name="Loyal", rule="repeat", count=2)
    client.force_login(creator)
    url = f"/admin/loyalty/badge/{badge.pk}/change/"
    data = page_form(client, url)
    data["count"] = "5"
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    badge.refresh_from_db()
    assert badge.count == 5


# -- tiers ---------------------------------------------------------------------------------

TIER_ADD = "/admin/loyalty/tier/add/"


def _tier_form(client, **changes) -> dict:
    data = page_form(client, TIER_ADD)
    data.update({"name": "Silver", "threshold": "50.00", "period": "lifetime"})
    data.update(changes)
    return data


def test_creator_sets_their_shops_tiers_written_through_tier_save(client):
    from apps.loyalty.models import Tier

    creator, other = CreatorFactory(), CreatorFactory()
    theirs = badge_save(shop=other.shop, name="Theirs", icon="x", rule="repeat", count=2)
    mine = badge_save(shop=creator.shop, name="Mine", icon="y", rule="repeat", count=2)
    client.force_login(creator)
    page = client.get(TIER_ADD).content.decode()
    assert "Mine" in page and "Theirs" not in page  # badge choices: their own
    response = client.post(
        TIER_ADD, _tier_form(client, requires_badge=str(mine.pk), perk_kind="percent_off", perk_percent="5")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    tier = Tier.objects.get(name="Silver")
    assert (tier.shop_id, tier.threshold, tier.requires_badge_id) == (creator.shop.pk, 50, mine.pk)
    # Field errors, nothing written: the same threshold twice, a percent perk without a
    # percent, another shop's badge.
    for changes, field in (
        ({"name": "Silver 2"}, "threshold"),
        ({"name": "Gold", "threshold": "200.00", "perk_kind": "percent_off"}, "perk_percent"),
        ({"name": "Gold", "threshold": "200.00", "requires_badge": str(theirs.pk)}, "requires_badge"),
    ):
        response = client.post(TIER_ADD, _tier_form(client, **changes))
        assert response.status_code == 200 and field in response.context["adminform"].form.errors, changes
    assert Tier.objects.count() == 1
    assert client.get(f"/admin/loyalty/tier/{tier.pk}/change/").status_code == 200
