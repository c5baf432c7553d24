"""Free text refuses control and bidirectional-override characters, in the API (400 with the
field's ``invalid_text``) and in the admin (a form error), by one rule (creatorcommerce/text.py)."""

from __future__ import annotations

import pytest

from apps.catalog.models import Product
from creatorcommerce.text import forbidden_character
from tests.factories import CreatorFactory, make_buyer, make_sku
from tests.helpers import inline_row, page_form

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "Tee \u202egnp.exe" shows as "Tee exe.png"


@pytest.mark.parametrize(
    ("text", "multiline", "bad"),
    [
        ("Red tee, size M", False, None),
        ("Ünïcödé ✓ 日本語 עברית العربية", False, None),
        ("\u200f right-to-left mark is fine", False, None),
        (f"Tee {RLO}gnp.exe", False, RLO),
        ("a\u2066b", False, "\u2066"),
        ("a\u2069b", True, "\u2069"),
        ("a\u202ab", True, "\u202a"),
        ("bell\x07", False, "\x07"),
        ("nul\x00", True, "\x00"),
        ("esc\x1b[31m", True, "\x1b"),
        ("c1\x85", True, "\x85"),
        ("del\x7f", False, "\x7f"),
        ("two\nlines", False, "\n"),
        ("tab\there", False, "\t"),
        ("two\r\nlines\tand a tab", True, None),
    ],
)
def test_the_rule(text, multiline, bad):
    assert forbidden_character(text, multiline=multiline) == bad


@pytest.fixture
def creator_api(api_client, db):
    creator = CreatorFactory()
    api_client.force_authenticate(creator)
    return api_client


def _product(title="Tee", description="", code="TEE-1"):
    return {"title": title, "description": description, "skus": [{"code": code, "price": "10.00", "title": "M"}]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("title", _product(title=f"Tee {RLO}gnp.exe")),
        ("title", _product(title="Tee\nwith a newline")),
        ("description", _product(description="soft\x1b[2Jcotton")),
        ("description", _product(description="a\u2067b")),
    ],
)
def test_api_refuses_control_and_bidi_characters(creator_api, field, body):
    response = creator_api.post("/api/v1/products/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][field][0]["code"] == "invalid_text"
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_api_refuses_them_inside_nested_objects(creator_api):
    body = _product()
    body["skus"][0]["title"] = f"M{RLO}"
    response = creator_api.post("/api/v1/products/", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["skus"]["0"]["title"][0]["code"] == "invalid_text"


@pytest.mark.django_db
def test_a_multi_line_description_keeps_its_lines_and_tabs(creator_api):
    response = creator_api.post("/api/v1/products/", _product(description="Soft.\n\tWash cold."), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["description"] == "Soft.\n\tWash cold."


@pytest.mark.django_db
def test_a_shipping_address_refuses_them(api_client):
    api_client.force_authenticate(make_buyer())
    address = {"name": f"Eve {RLO}", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345"}
    response = api_client.put("/api/v1/me/address/", {**address, "country": "US"}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"]["name"][0]["code"] == "invalid_text"


@pytest.fixture
def product_page(client, db):
    """A creator signed in to the admin, on their product's change page: (sku, url, form data)."""
    creator = CreatorFactory()
    client.force_login(creator)
    sku = make_sku(creator.shop, code="TEE", price="10.00", stock=5)
    url = f"/admin/catalog/product/{sku.product_id}/change/"
    return sku, url, page_form(client, url)


def test_admin_forms_refuse_them(client, product_page):
    sku, url, data = product_page
    data["title"] = f"Tee {RLO}gnp.exe"
    data[f"{inline_row(data, 'skus', sku)}-title"] = "M\x07"
    response = client.post(url, data)
    assert response.status_code == 200  # the form again, with errors
    errors = response.context["adminform"].form.errors
    assert errors["title"][0].startswith("Text may not contain")
    inline_errors = response.context["inline_admin_formsets"][0].formset.errors
    assert any("title" in row for row in inline_errors)
    sku.product.refresh_from_db()
    assert sku.product.title != data["title"]


def test_admin_text_areas_keep_line_breaks(client, product_page):
    sku, url, data = product_page
    data["description"] = "Soft.\r\n\tWash cold."
    assert client.post(url, data).status_code == 302
    sku.product.refresh_from_db()
    assert "\tWash cold." in sku.product.description


def test_every_registered_admin_gets_the_rule(client, db):
    """Admins that do not build on ShopScopedAdmin (the user admin) get it from the site."""
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_superuser(email="root@example.com", password="a-long-Passw0rd!")
    client.force_login(staff)
    person = CreatorFactory()
    url = f"/admin/accounts/user/{person.pk}/change/"
    data = page_form(client, url)
    data["display_name"] = f"Eve {RLO}"
    response = client.post(url, data)
    assert response.status_code == 200
    assert "display_name" in response.context["adminform"].form.errors
    person.refresh_from_db()
    assert RLO not in person.display_name
