"""The catalog in the creator-scoped admin: a creator sees and edits only their own shop's
products, SKUs, stock levels and locations; staff see every shop."""

import pytest

from apps.catalog.models import SKU, Location, Product, StockLevel
from creatorcommerce.spine.models import OutboxEvent
from tests.factories import CreatorFactory, StaffFactory, make_sku

pytestmark = pytest.mark.django_db

ADMIN = "/admin/catalog"


def shop_objects(shop, tag):
    """A product with one SKU and stock, plus a named extra location, in ``shop``."""
    sku = make_sku(shop=shop, code=f"{tag}-SKU", stock=5)
    sku.product.title = f"{tag} product"
    sku.product.save()
    extra = Location.objects.create(shop=shop, name=f"{tag} depot")
    return {
        "product": sku.product,
        "sku": sku,
        "level": StockLevel.objects.get(sku=sku),
        "location": extra,
        "default_location": Location.objects.get(shop=shop, is_default=True),
    }


@pytest.fixture
def two_shops(client):
    mine, theirs = CreatorFactory(), CreatorFactory()
    client.force_login(mine)
    return {
        "creator": mine,
        "shop": mine.shop,
        "mine": shop_objects(mine.shop, "MINE"),
        "theirs": shop_objects(theirs.shop, "THEIRS"),
        "their_shop": theirs.shop,
    }


def changelist(client, model, **params):
    response = client.get(f"{ADMIN}/{model}/", params)
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].result_list)


def snapshot():
    return {
        "products": sorted(Product.objects.values_list("pk", "shop_id", "title", "is_active")),
        "skus": sorted(SKU.objects.values_list("pk", "shop_id", "product_id", "code", "price", "is_active")),
        "levels": sorted(StockLevel.objects.values_list("pk", "sku_id", "location_id", "available")),
        "locations": sorted(Location.objects.values_list("pk", "shop_id", "name", "is_default")),
        "events": OutboxEvent.objects.count(),
    }


def management_form(response):
    """The SKU inline's management-form fields, read from the rendered page."""
    (inline,) = response.context["inline_admin_formsets"]
    formset = inline.formset
    return formset.prefix, {
        f"{formset.prefix}-TOTAL_FORMS": "1",
        f"{formset.prefix}-INITIAL_FORMS": str(formset.initial_form_count()),
        f"{formset.prefix}-MIN_NUM_FORMS": "0",
        f"{formset.prefix}-MAX_NUM_FORMS": "1000",
    }


def product_add_post(client, *, title, code, price="12.00", extra=None, sku_extra=None):
    page = client.get(f"{ADMIN}/product/add/")
    assert page.status_code == 200
    prefix, data = management_form(page)
    assert prefix == "skus"
    data.update(
        {
            "title": title,
            "description": "",
            "image_url": "",
            "is_active": "on",
            f"{prefix}-0-code": code,
            f"{prefix}-0-title": "",
            f"{prefix}-0-price": price,
            f"{prefix}-0-currency": "USD",
            f"{prefix}-0-per_buyer_limit": "",
            f"{prefix}-0-is_active": "on",
            "_save": "Save",
        }
    )
    data.update(extra or {})
    data.update({f"{prefix}-0-{k}": v for k, v in (sku_extra or {}).items()})
    return client.post(f"{ADMIN}/product/add/", data)


# -- changelists ----------------------------------------------------------------------------


def test_creator_sees_only_own_products(client, two_shops):
    assert changelist(client, "product") == [two_shops["mine"]["product"]]


def test_creator_sees_only_own_skus(client, two_shops):
    assert changelist(client, "sku") == [two_shops["mine"]["sku"]]


def test_creator_sees_only_own_stock_levels(client, two_shops):
    assert changelist(client, "stocklevel") == [two_shops["mine"]["level"]]


def test_creator_sees_only_own_locations(client, two_shops):
    mine = two_shops["mine"]
    assert set(changelist(client, "location")) == {mine["location"], mine["default_location"]}


def test_changelist_html_does_not_leak_other_shops(client, two_shops):
    for model in ("product", "sku", "stocklevel", "location"):
        body = client.get(f"{ADMIN}/{model}/").content.decode()
        assert "THEIRS" not in body and "MINE" in body, model


def test_search_does_not_reach_other_shops(client, two_shops):
    assert changelist(client, "product", q="THEIRS") == []
    assert changelist(client, "sku", q="THEIRS-SKU") == []
    assert changelist(client, "stocklevel", q="THEIRS-SKU") == []


def test_staff_see_every_shops_catalog(client, two_shops):
    client.force_login(StaffFactory())
    mine, theirs = two_shops["mine"], two_shops["theirs"]
    assert set(changelist(client, "product")) == {mine["product"], theirs["product"]}
    assert set(changelist(client, "sku")) == {mine["sku"], theirs["sku"]}
    assert set(changelist(client, "stocklevel")) == {mine["level"], theirs["level"]}
    assert len(changelist(client, "location")) == 4
    assert client.get(f"{ADMIN}/product/{theirs['product'].pk}/change/").status_code == 200


# -- other shops' objects are out of reach ---------------------------------------------------


@pytest.mark.parametrize(
    "model, key", [("product", "product"), ("sku", "sku"), ("stocklevel", "level"), ("location", "location")]
)
def test_other_shops_change_pages_are_unreachable(client, two_shops, model, key):
    obj = two_shops["theirs"][key]
    response = client.get(f"{ADMIN}/{model}/{obj.pk}/change/")
    assert response.status_code in (302, 403, 404)
    assert b"THEIRS" not in response.content
    assert client.get(f"{ADMIN}/{model}/{obj.pk}/delete/").status_code in (302, 403, 404)
    assert client.get(f"{ADMIN}/{model}/{obj.pk}/history/").status_code in (302, 403, 404)


def test_other_shops_product_cannot_be_changed_by_post(client, two_shops):
    theirs = two_shops["theirs"]["product"]
    before = snapshot()
    response = client.post(
        f"{ADMIN}/product/{theirs.pk}/change/",
        {
            "title": "hijacked",
            "description": "",
            "image_url": "",
            "skus-TOTAL_FORMS": "0",
            "skus-INITIAL_FORMS": "0",
            "skus-MIN_NUM_FORMS": "0",
            "skus-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code in (302, 403, 404)
    assert snapshot() == before
    theirs.refresh_from_db()
    assert theirs.title == "THEIRS product" and theirs.is_active


def test_other_shops_stock_cannot_be_changed_or_deleted_by_post(client, two_shops):
    theirs = two_shops["theirs"]
    before = snapshot()
    response = client.post(f"{ADMIN}/stocklevel/{theirs['level'].pk}/change/", {"available": "0"})
    assert response.status_code in (302, 403, 404)
    response = client.post(f"{ADMIN}/product/{theirs['product'].pk}/delete/", {"post": "yes"})
    assert response.status_code in (302, 403, 404)
    response = client.post(f"{ADMIN}/location/{theirs['location'].pk}/delete/", {"post": "yes"})
    assert response.status_code in (302, 403, 404)
    assert snapshot() == before


def test_bulk_delete_action_ignores_other_shops_ids(client, two_shops):
    theirs = two_shops["theirs"]["product"]
    before = snapshot()
    client.post(
        f"{ADMIN}/product/",
        {"action": "delete_selected", "_selected_action": [str(theirs.pk)], "post": "yes"},
    )
    assert snapshot() == before


# -- adding a product ------------------------------------------------------------------------


def test_creator_add_product_form_has_no_shop_field(client, two_shops):
    response = client.get(f"{ADMIN}/product/add/")
    assert response.status_code == 200
    assert "shop" not in response.context["adminform"].form.fields
    (inline,) = response.context["inline_admin_formsets"]
    assert inline.formset.prefix == "skus"
    assert "shop" not in inline.formset.empty_form.fields
    assert b'name="shop"' not in response.content
    assert b'name="skus-TOTAL_FORMS"' in response.content


def test_creator_adds_a_product_with_a_sku_in_their_own_shop(client, two_shops):
    shop, their_shop = two_shops["shop"], two_shops["their_shop"]
    # A forged "shop" field is ignored: the creator's shop is assigned, whatever is posted.
    response = product_add_post(
        client,
        title="Admin hoodie",
        code="HOODIE",
        extra={"shop": str(their_shop.pk)},
        sku_extra={"shop": str(their_shop.pk)},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    product = Product.objects.get(title="Admin hoodie")
    assert product.shop == shop
    sku = SKU.objects.get(code="HOODIE")
    assert sku.product == product and sku.shop == shop
    assert str(sku.price) == "12.00"
    # The new product shows up in the creator's list, not in the other creator's.
    assert product in changelist(client, "product")
    client.force_login(their_shop.owner)
    assert product not in changelist(client, "product")


def test_invalid_sku_in_the_admin_form_saves_nothing(client, two_shops):
    before = snapshot()
    response = product_add_post(client, title="Bad", code="has space", price="-1")
    assert response.status_code == 200  # the form again, with errors
    assert snapshot() == before


def test_reusing_a_sku_code_of_another_shop_is_fine(client, two_shops):
    response = product_add_post(client, title="Copycat", code="THEIRS-SKU")
    assert response.status_code == 302
    assert SKU.objects.get(code="THEIRS-SKU", shop=two_shops["shop"]).product.title == "Copycat"


def test_reusing_an_own_sku_code_is_a_form_error_not_a_crash(client, two_shops):
    before = snapshot()
    response = product_add_post(client, title="Twin", code="MINE-SKU")
    assert response.status_code == 200  # the form again, with an error on the code
    assert snapshot() == before


def test_renaming_a_sku_to_a_taken_code_is_a_form_error_not_a_crash(client, two_shops):
    mine = two_shops["mine"]
    other = make_sku(shop=two_shops["shop"], code="MINE-OTHER")
    before = snapshot()
    response = client.post(
        f"{ADMIN}/sku/{other.pk}/change/",
        {
            "product": str(other.product_id),
            "code": mine["sku"].code,
            "title": "",
            "price": "10.00",
            "currency": "USD",
            "per_buyer_limit": "",
            "is_active": "on",
        },
    )
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert snapshot() == before


def test_staff_add_product_sku_follows_the_products_shop(client, two_shops):
    client.force_login(StaffFactory())
    their_shop = two_shops["their_shop"]
    page = client.get(f"{ADMIN}/product/add/")
    assert "shop" in page.context["adminform"].form.fields  # staff pick the shop
    response = product_add_post(client, title="Staff-made", code="STAFF-1", extra={"shop": str(their_shop.pk)})
    assert response.status_code == 302
    sku = SKU.objects.get(code="STAFF-1")
    assert sku.product.shop == their_shop and sku.shop == their_shop


def test_creator_can_edit_own_product(client, two_shops):
    mine = two_shops["mine"]
    page = client.get(f"{ADMIN}/product/{mine['product'].pk}/change/")
    assert page.status_code == 200
    prefix, data = management_form(page)
    sku = mine["sku"]
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": "1",
            "title": "Renamed",
            "description": "",
            "image_url": "",
            "is_active": "on",
            f"{prefix}-0-id": str(sku.pk),
            f"{prefix}-0-product": str(mine["product"].pk),
            f"{prefix}-0-code": sku.code,
            f"{prefix}-0-title": "",
            f"{prefix}-0-price": "11.00",
            f"{prefix}-0-currency": "USD",
            f"{prefix}-0-per_buyer_limit": "",
            f"{prefix}-0-is_active": "on",
        }
    )
    response = client.post(f"{ADMIN}/product/{mine['product'].pk}/change/", data)
    assert response.status_code == 302
    mine["product"].refresh_from_db()
    sku.refresh_from_db()
    assert mine["product"].title == "Renamed" and str(sku.price) == "11.00" and sku.shop == two_shops["shop"]


def test_skus_are_not_added_on_their_own(client, two_shops):
    assert client.get(f"{ADMIN}/sku/add/").status_code == 403


# -- stock levels ----------------------------------------------------------------------------


def test_stock_level_add_form_offers_only_own_skus_and_locations(client, two_shops):
    response = client.get(f"{ADMIN}/stocklevel/add/")
    assert response.status_code == 200
    form = response.context["adminform"].form
    mine = two_shops["mine"]
    assert set(form.fields["sku"].queryset) == {mine["sku"]}
    assert set(form.fields["location"].queryset) == {mine["location"], mine["default_location"]}
    assert b"THEIRS" not in response.content


def test_sku_change_form_offers_only_own_products(client, two_shops):
    mine = two_shops["mine"]
    response = client.get(f"{ADMIN}/sku/{mine['sku'].pk}/change/")
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert set(form.fields["product"].queryset) == {mine["product"]}
    assert "shop" not in form.fields


def test_stock_level_add_with_other_shops_sku_or_location_is_refused(client, two_shops):
    mine, theirs = two_shops["mine"], two_shops["theirs"]
    before = snapshot()
    for sku, location in ((theirs["sku"], mine["location"]), (mine["sku"], theirs["location"])):
        response = client.post(
            f"{ADMIN}/stocklevel/add/", {"sku": str(sku.pk), "location": str(location.pk), "available": "9"}
        )
        assert response.status_code == 200  # the form again, with an invalid-choice error
        assert response.context["adminform"].form.errors
    assert snapshot() == before


def test_stock_level_add_at_own_location_emits_stock_changed(client, two_shops):
    mine = two_shops["mine"]
    response = client.post(
        f"{ADMIN}/stocklevel/add/",
        {"sku": str(mine["sku"].pk), "location": str(mine["location"].pk), "available": "9"},
    )
    assert response.status_code == 302
    level = StockLevel.objects.get(sku=mine["sku"], location=mine["location"])
    assert level.available == 9
    event = OutboxEvent.objects.filter(type="stock.changed").latest("id")
    assert event.payload["available"] == 9 and event.payload["level"] == level.pk


def test_editing_available_in_the_admin_emits_stock_changed(client, two_shops):
    mine = two_shops["mine"]
    level = mine["level"]
    page = client.get(f"{ADMIN}/stocklevel/{level.pk}/change/")
    assert page.status_code == 200
    assert set(page.context["adminform"].form.fields) == {"available"}  # sku and location are read-only
    events_before = OutboxEvent.objects.filter(type="stock.changed").count()
    response = client.post(f"{ADMIN}/stocklevel/{level.pk}/change/", {"available": "42"})
    assert response.status_code == 302
    level.refresh_from_db()
    assert level.available == 42 and StockLevel.objects.filter(sku=mine["sku"]).count() == 1
    changed = OutboxEvent.objects.filter(type="stock.changed").order_by("id")
    assert changed.count() == events_before + 1
    payload = changed.last().payload
    assert (payload["sku"], payload["sku_id"], payload["level"], payload["available"]) == (
        mine["sku"].code,
        mine["sku"].pk,
        level.pk,
        42,
    )


@pytest.mark.parametrize("value", ["-1", "abc", ""])
def test_invalid_available_in_the_admin_changes_nothing(client, two_shops, value):
    level = two_shops["mine"]["level"]
    before = snapshot()
    response = client.post(f"{ADMIN}/stocklevel/{level.pk}/change/", {"available": value})
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert snapshot() == before


# -- locations -------------------------------------------------------------------------------


def test_creator_adds_a_location_in_their_own_shop(client, two_shops):
    response = client.get(f"{ADMIN}/location/add/")
    assert "shop" not in response.context["adminform"].form.fields
    response = client.post(
        f"{ADMIN}/location/add/",
        {"name": "Pop-up Berlin", "kind": "venue", "address": "", "shop": str(two_shops["their_shop"].pk)},
    )
    assert response.status_code == 302
    assert Location.objects.get(name="Pop-up Berlin").shop == two_shops["shop"]


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"name": "MINE depot", "kind": "warehouse"}, id="duplicate-name"),
        pytest.param({"name": "Second default", "kind": "warehouse", "is_default": "on"}, id="second-default"),
    ],
)
def test_location_clash_in_own_shop_is_a_form_error_not_a_crash(client, two_shops, fields):
    before = snapshot()
    response = client.post(f"{ADMIN}/location/add/", {"address": "", **fields})
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert snapshot() == before


def test_staff_pairing_sku_and_location_of_different_shops_is_a_form_error(client, two_shops):
    client.force_login(StaffFactory())
    mine, theirs = two_shops["mine"], two_shops["theirs"]
    before = snapshot()
    response = client.post(
        f"{ADMIN}/stocklevel/add/",
        {"sku": str(mine["sku"].pk), "location": str(theirs["location"].pk), "available": "3"},
    )
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert snapshot() == before


# -- SKU codes, currency and opening stock in the product form -------------------------------


def sku_row(prefix, i, *, code, sku=None, product=None, delete=False, currency="USD"):
    row = {
        f"{prefix}-{i}-code": code,
        f"{prefix}-{i}-title": "",
        f"{prefix}-{i}-price": "10.00",
        f"{prefix}-{i}-currency": currency,
        f"{prefix}-{i}-per_buyer_limit": "",
        f"{prefix}-{i}-is_active": "on",
    }
    if sku is not None:
        row.update({f"{prefix}-{i}-id": str(sku.pk), f"{prefix}-{i}-product": str(product.pk)})
    if delete:
        row[f"{prefix}-{i}-DELETE"] = "on"
    return row


def product_change_post(client, product, rows):
    """Post the product's change form with the given SKU rows (existing ones first)."""
    page = client.get(f"{ADMIN}/product/{product.pk}/change/")
    assert page.status_code == 200
    prefix, data = management_form(page)
    data.update({f"{prefix}-TOTAL_FORMS": str(len(rows)), "title": product.title, "description": ""})
    data.update({"image_url": "", "is_active": "on"})
    for i, row in enumerate(rows):
        data.update(sku_row(prefix, i, **row))
    return client.post(f"{ADMIN}/product/{product.pk}/change/", data)


def inline_errors(response):
    (inline,) = response.context["inline_admin_formsets"]
    return [form.errors for form in inline.formset.forms]


def test_one_code_twice_in_one_submission_is_a_form_error(client, two_shops):
    mine = two_shops["mine"]
    before = snapshot()
    response = product_change_post(
        client,
        mine["product"],
        [{"code": mine["sku"].code, "sku": mine["sku"], "product": mine["product"]}, {"code": "NEW"}, {"code": "NEW"}],
    )
    assert response.status_code == 200
    errors = inline_errors(response)
    assert not errors[0] and "code" in errors[1] and "code" in errors[2]
    assert snapshot() == before


def test_a_code_of_a_sku_deleted_in_the_same_submission_can_be_reused(client, two_shops):
    mine = two_shops["mine"]
    old = mine["sku"]
    response = product_change_post(
        client,
        mine["product"],
        [{"code": old.code, "sku": old, "product": mine["product"], "delete": True}, {"code": old.code}],
    )
    assert response.status_code == 302, inline_errors(response)
    (sku,) = SKU.objects.filter(shop=two_shops["shop"], code=old.code)
    assert sku.pk != old.pk


def test_staff_adding_a_code_taken_in_the_chosen_shop_is_a_form_error(client, two_shops):
    client.force_login(StaffFactory())
    before = snapshot()
    response = product_add_post(
        client, title="Twin", code="THEIRS-SKU", extra={"shop": str(two_shops["their_shop"].pk)}
    )
    assert response.status_code == 200 and "code" in inline_errors(response)[0]
    assert snapshot() == before


def test_a_sku_added_in_the_admin_gets_a_stock_row_at_the_default_location(client, two_shops):
    response = product_add_post(client, title="Admin hoodie", code="HOODIE")
    assert response.status_code == 302
    sku = SKU.objects.get(code="HOODIE")
    level = StockLevel.objects.get(sku=sku)
    assert level.location == two_shops["mine"]["default_location"] and level.available == 0
    event = OutboxEvent.objects.filter(type="stock.changed").latest("id")
    assert (event.payload["sku_id"], event.payload["level"], event.payload["available"]) == (sku.pk, level.pk, 0)
    # Renaming it later adds no second row.
    response = product_change_post(client, sku.product, [{"code": "HOODIE-2", "sku": sku, "product": sku.product}])
    assert response.status_code == 302
    assert StockLevel.objects.filter(sku=sku).count() == 1


def test_new_sku_rows_start_in_the_shops_currency(client, two_shops):
    shop = two_shops["shop"]
    shop.currency = "EUR"
    shop.save()
    (inline,) = client.get(f"{ADMIN}/product/add/").context["inline_admin_formsets"]
    assert inline.formset.empty_form["currency"].value() == "EUR"
    client.force_login(StaffFactory())
    product = two_shops["mine"]["product"]
    (inline,) = client.get(f"{ADMIN}/product/{product.pk}/change/").context["inline_admin_formsets"]
    assert inline.formset.empty_form["currency"].value() == "EUR"


# -- the creator's shop takes part in model validation ----------------------------------------


def test_saving_a_sku_with_its_own_code_unchanged_works(client, two_shops):
    sku = two_shops["mine"]["sku"]
    response = client.post(
        f"{ADMIN}/sku/{sku.pk}/change/",
        {
            "product": str(sku.product_id),
            "code": sku.code,
            "title": "",
            "price": "9.00",
            "currency": "USD",
            "per_buyer_limit": "",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    sku.refresh_from_db()
    assert str(sku.price) == "9.00" and sku.shop == two_shops["shop"]


def test_creator_can_edit_own_default_location(client, two_shops):
    default = two_shops["mine"]["default_location"]
    response = client.post(
        f"{ADMIN}/location/{default.pk}/change/",
        {"name": "Renamed warehouse", "kind": "warehouse", "address": "", "is_default": "on"},
    )
    assert response.status_code == 302
    default.refresh_from_db()
    assert default.name == "Renamed warehouse" and default.is_default and default.shop == two_shops["shop"]


def test_a_location_name_used_by_another_shop_is_fine(client, two_shops):
    response = client.post(f"{ADMIN}/location/add/", {"name": "THEIRS depot", "kind": "warehouse", "address": ""})
    assert response.status_code == 302
    assert Location.objects.get(name="THEIRS depot", shop=two_shops["shop"])


def test_stock_above_the_limit_in_the_admin_is_a_form_error(client, two_shops):
    from apps.catalog.services import MAX_STOCK_PER_LEVEL

    level = two_shops["mine"]["level"]
    before = snapshot()
    response = client.post(f"{ADMIN}/stocklevel/{level.pk}/change/", {"available": str(MAX_STOCK_PER_LEVEL + 1)})
    assert response.status_code == 200 and "available" in response.context["adminform"].form.errors
    assert snapshot() == before
