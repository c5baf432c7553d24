"""The model in the admin: read-only, a creator sees their own shop's only."""

from __future__ import annotations

import pytest

from apps.personalization.services import model_train
from tests.factories import CreatorFactory
from tests.personalization.conftest import buy

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_a_creator_reads_their_shops_model_and_no_one_elses(client, shop, buyers):
    buy(buyers[0], shop, "A", "B")
    model = model_train(shop=shop)
    client.force_login(shop.owner)
    listing = client.get("/admin/personalization/itemmodel/")
    assert listing.status_code == 200 and str(shop) in listing.content.decode()
    page = client.get(f"/admin/personalization/itemmodel/{model.pk}/change/")
    assert page.status_code == 200
    cells = page.context["inline_admin_formsets"][0].formset.queryset
    assert [(str(n.sku), n.rank, str(n.neighbour)) for n in cells] == [("A", 0, "B"), ("B", 0, "A")]
    assert client.post(f"/admin/personalization/itemmodel/{model.pk}/delete/").status_code == 403
    assert client.get("/admin/personalization/itemmodel/add/").status_code == 403

    client.force_login(CreatorFactory())
    other = client.get(f"/admin/personalization/itemmodel/{model.pk}/change/")
    assert other.status_code == 302 and other.url == "/admin/"  # Django's "doesn't exist" for a scoped queryset
    assert str(shop) not in client.get("/admin/personalization/itemmodel/").content.decode()
