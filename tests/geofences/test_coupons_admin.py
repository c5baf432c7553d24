"""The geo offer admin (scoped to the creator's shop, written through geo_offer_save,
constraints as field errors) and the read-only coupon list."""

from __future__ import annotations

import pytest

from apps.geofences.models import GeoOffer
from tests.factories import CreatorFactory, StaffFactory, make_buyer, make_sku
from tests.helpers import captured_events, page_form

from .coupon_helpers import issue, make_offer, make_venue

pytestmark = pytest.mark.django_db

ADD = "/admin/geofences/geooffer/add/"


def _form(client, venue, **changes) -> dict:
    data = page_form(client, ADD)
    data.update(
        {
            "venue": str(venue.pk),
            "label": "Doors open",
            "trigger": "enter",
            "kind": "percent",
            "start_value": "20.00",
            "end_value": "5.00",
            "decay_minutes": "30",
            "expires_minutes": "60",
            "cap": "10",
            "starts_at_0": "2026-06-01",
            "starts_at_1": "12:00:00",
            "is_active": "on",
        }
    )
    data.update(changes)
    return data


def test_creator_adds_an_offer_through_the_service(client):
    creator = CreatorFactory()
    venue = make_venue(creator.shop)
    client.force_login(creator)
    with captured_events() as events:
        response = client.post(ADD, _form(client, venue))
    assert response.status_code == 302, response.content.decode()[:2000]
    offer = GeoOffer.objects.get(label="Doors open")
    assert (offer.shop_id, offer.venue_id, offer.redemptions_left) == (creator.shop.pk, venue.pk, 10)
    assert [e[0] for e in events] == ["geo_offer.created"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"end_value": "25.00"}, "end_value"),
        ({"start_value": "120.00", "end_value": "5.00"}, "start_value"),
    ],
)
def test_constraints_are_field_errors(client, changes, field):
    creator = CreatorFactory()
    venue = make_venue(creator.shop)
    client.force_login(creator)
    response = client.post(ADD, _form(client, venue, **changes))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not GeoOffer.objects.exists()


def test_choices_and_lists_are_the_creators_own(client):
    creator, other = CreatorFactory(), CreatorFactory()
    own_venue, other_venue = make_venue(creator.shop), make_venue(other.shop)
    other_sku = make_sku(other.shop)
    other_offer = make_offer(other.shop, venue=other_venue, label="Rival secret offer")
    own_offer = make_offer(creator.shop, venue=own_venue)
    issue(make_buyer(), own_offer)
    client.force_login(creator)
    response = client.post(ADD, _form(client, other_venue, sku=str(other_sku.pk)))
    errors = response.context["adminform"].form.errors
    assert "venue" in errors and "sku" in errors
    listing = client.get("/admin/geofences/geooffer/")
    assert list(listing.context["cl"].result_list) == [own_offer]
    assert listing.context["cl"].result_list[0].issued_count == 1
    assert client.get(f"/admin/geofences/geooffer/{other_offer.pk}/change/").status_code in (302, 403, 404)
    coupons = client.get("/admin/geofences/coupon/")
    assert coupons.status_code == 200 and len(coupons.context["cl"].result_list) == 1
    # The "By offer" filter lists the creator's own offers, not another shop's labels.
    issue(make_buyer(), other_offer)
    coupons = client.get("/admin/geofences/coupon/")
    assert own_offer.label in coupons.content.decode()
    assert other_offer.label not in coupons.content.decode()
    staff = StaffFactory()
    client.force_login(staff)
    assert client.get("/admin/geofences/geooffer/").context["cl"].result_count == 2


def test_staff_lists_say_whose_offer_and_coupon_each_is(client):
    creator = CreatorFactory()
    offer = make_offer(creator.shop, venue=make_venue(creator.shop))
    issue(make_buyer(), offer)
    client.force_login(StaffFactory())
    for path in ("/admin/geofences/geooffer/", "/admin/geofences/coupon/"):
        page = client.get(path).content.decode()
        assert "column-shop_name" in page and creator.shop.name in page
