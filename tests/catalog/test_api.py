"""The catalog API over HTTP: creators build products and set stock; anyone reads a SKU.

Every failing request must answer JSON with a machine-readable ``code`` and write nothing:
no product, SKU, stock level, location or outbox event.
"""

import json

import pytest
from django.conf import settings

from apps.catalog.models import SKU, Location, Product, StockLevel
from creatorcommerce.spine.models import OutboxEvent
from tests.factories import CreatorFactory, UserFactory, make_sku

pytestmark = pytest.mark.django_db

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


# -- helpers --------------------------------------------------------------------------------


@pytest.fixture
def creator_client(client):
    creator = CreatorFactory()
    client.force_login(creator)
    client.creator = creator
    client.shop = creator.shop
    return client


def post_json(client, url, body=None, raw=None, **kwargs):
    data = raw if raw is not None else json.dumps(body)
    return client.post(url, data, content_type="application/json", **kwargs)


def create_product(client, body, raw=None):
    return post_json(client, "/api/v1/products/", body, raw=raw)


def post_stock(client, code, body=None, raw=None, **kwargs):
    return post_json(client, f"/api/v1/skus/{code}/stock/", body, raw=raw, **kwargs)


def db_state():
    """Everything a catalog request could write, to compare before and after a failure."""
    return {
        "products": sorted(Product.objects.values_list("pk", "shop_id", "title")),
        "skus": sorted(SKU.objects.values_list("pk", "shop_id", "code", "price", "currency")),
        "levels": sorted(StockLevel.objects.values_list("pk", "sku_id", "location_id", "available")),
        "locations": sorted(Location.objects.values_list("pk", "shop_id", "name", "is_default")),
        "events": OutboxEvent.objects.count(),
    }


# The keys a stock.changed payload promises; payloads may grow (e.g. a version), not shrink.
# Where the count is kept is known from "level" (the StockLevel id).
STOCK_KEYS = ("sku", "sku_id", "shop", "level", "available")


def subset(payload, keys):
    return {key: payload.get(key, "<missing>") for key in keys}


def events(event_type):
    return [e.payload for e in OutboxEvent.objects.filter(type=event_type).order_by("id")]


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    data = response.json()
    assert data["code"] == code, data
    assert isinstance(data["message"], str) and data["message"]
    return data


def assert_field_errors(data, field):
    """A 400 names the field with a list of {code, message} (nested lists for SKU rows)."""
    assert "errors" in data, data
    assert field in data["errors"], data["errors"]

    def walk(node):
        if isinstance(node, dict) and "code" in node and "message" in node:
            return [node]
        if isinstance(node, dict):
            return [leaf for value in node.values() for leaf in walk(value)]
        if isinstance(node, list):
            return [leaf for item in node for leaf in walk(item)]
        return []

    leaves = walk(data["errors"][field])
    assert leaves, data["errors"][field]
    assert all(isinstance(leaf["code"], str) and leaf["code"] for leaf in leaves)


SIMPLE_PRODUCT = {"title": "Tour tee", "skus": [{"code": "TEE-S", "price": "25.00", "stock": 3}]}


# -- POST /api/v1/products/ ---------------------------------------------------------------


def test_create_product_returns_product_skus_and_stock_at_default_location(creator_client):
    shop = creator_client.shop
    shop.currency = "EUR"
    shop.save()
    body = {
        "title": "Tour tee",
        "description": "Black, heavy cotton.",
        "skus": [
            {"code": "TEE-S", "price": "25.00", "stock": 5, "title": "Tour tee, small"},
            {"code": "TEE-M", "price": 27.5, "currency": "USD", "per_buyer_limit": 2},
        ],
    }
    response = create_product(creator_client, body)
    assert response.status_code == 201, response.content
    data = response.json()

    product = Product.objects.get()
    assert product.shop == shop and product.title == "Tour tee" and product.description == "Black, heavy cotton."
    assert data["id"] == product.pk and data["shop"] == shop.pk
    assert data["title"] == "Tour tee" and data["description"] == "Black, heavy cotton."

    location = Location.objects.get(shop=shop)
    assert location.is_default
    by_code = {s["code"]: s for s in data["skus"]}
    assert set(by_code) == {"TEE-S", "TEE-M"}
    small, medium = by_code["TEE-S"], by_code["TEE-M"]
    assert small["title"] == "Tour tee, small" and medium["title"] == "Tour tee"  # blank -> product title
    assert small["price"] == "25.00" and medium["price"] == "27.50"
    assert small["currency"] == "EUR"  # the shop's currency by default
    assert medium["currency"] == "USD"  # unless given
    assert small["per_buyer_limit"] is None and medium["per_buyer_limit"] == 2
    assert small["available"] == 5 and medium["available"] == 0  # stock defaults to 0
    assert small["stock"] == [{"location": location.pk, "location_name": location.name, "available": 5}]
    assert medium["stock"] == [{"location": location.pk, "location_name": location.name, "available": 0}]

    skus = {s.code: s for s in SKU.objects.all()}
    assert all(s.shop == shop and s.product == product for s in skus.values())
    assert skus["TEE-S"].currency == "EUR" and skus["TEE-M"].currency == "USD"
    assert {(lvl.sku.code, lvl.location_id, lvl.available) for lvl in StockLevel.objects.all()} == {
        ("TEE-S", location.pk, 5),
        ("TEE-M", location.pk, 0),
    }
    # What the product page answers is what the create answered.
    assert creator_client.get(f"/api/v1/products/{product.pk}/").json() == data


def test_default_location_is_created_on_first_use_only(creator_client):
    assert not Location.objects.exists()
    assert create_product(creator_client, SIMPLE_PRODUCT).status_code == 201
    assert create_product(creator_client, {"title": "Cap", "skus": [{"code": "CAP", "price": 9}]}).status_code == 201
    location = Location.objects.get()
    assert location.shop == creator_client.shop and location.is_default
    assert set(StockLevel.objects.values_list("location_id", flat=True)) == {location.pk}


def test_existing_default_location_is_used(creator_client):
    Location.objects.create(shop=creator_client.shop, name="Back room", is_default=False)
    studio = Location.objects.create(shop=creator_client.shop, name="Studio", is_default=True)
    response = create_product(creator_client, SIMPLE_PRODUCT)
    assert response.status_code == 201
    assert response.json()["skus"][0]["stock"][0]["location"] == studio.pk
    assert Location.objects.count() == 2
    assert StockLevel.objects.get().location == studio


def test_create_product_emits_product_created_and_stock_changed_per_sku(creator_client):
    body = {
        "title": "Poster",
        "skus": [{"code": "P-A2", "price": "12.00", "stock": 7}, {"code": "P-A3", "price": "8.00"}],
    }
    response = create_product(creator_client, body)
    assert response.status_code == 201
    product_id, shop_id = response.json()["id"], creator_client.shop.pk
    location = Location.objects.get()

    created = OutboxEvent.objects.get(type="product.created")
    assert subset(created.payload, ("product", "shop", "skus")) == {
        "product": product_id,
        "shop": shop_id,
        "skus": ["P-A2", "P-A3"],
    }
    assert created.groups == [f"shop.{shop_id}"]

    changed = OutboxEvent.objects.filter(type="stock.changed").order_by("id")
    assert len(changed) == 2
    skus = {s.code: s for s in SKU.objects.all()}
    for event, (code, available) in zip(changed, [("P-A2", 7), ("P-A3", 0)], strict=True):
        level = StockLevel.objects.get(sku=skus[code])
        assert level.location == location  # the shop's default location
        assert subset(event.payload, STOCK_KEYS) == {
            "sku": code,
            "sku_id": skus[code].pk,
            "shop": shop_id,
            "level": level.pk,
            "available": available,
        }
        assert event.groups == [f"sku.{skus[code].pk}"]
    created_skus = OutboxEvent.objects.filter(type="sku.created").order_by("id")
    assert [(e.payload["sku"], e.payload["price"]) for e in created_skus] == [("P-A2", "12.00"), ("P-A3", "8.00")]
    assert OutboxEvent.objects.count() == 5


def test_same_code_in_another_shop_is_allowed(creator_client):
    make_sku(code="TEE-S")  # another creator's shop
    response = create_product(creator_client, SIMPLE_PRODUCT)
    assert response.status_code == 201
    assert SKU.objects.filter(code="TEE-S").count() == 2


def test_limits_at_the_edges_are_accepted(creator_client):
    body = {
        "title": "T" * 200,
        "skus": [
            {"code": "A" * 64, "price": "9999999999.99", "stock": 10_000_000, "per_buyer_limit": 10_000},
            {"code": "free.sample_1-x", "price": 0, "stock": 0, "per_buyer_limit": 1},
        ],
    }
    response = create_product(creator_client, body)
    assert response.status_code == 201, response.content
    assert StockLevel.objects.get(sku__code="A" * 64).available == 10_000_000


# -- GET /api/v1/products/ and /api/v1/products/{id}/ -------------------------------------


def test_products_list_shows_only_own_products(creator_client):
    make_sku(code="THEIRS")
    mine_old = create_product(creator_client, SIMPLE_PRODUCT).json()
    mine_new = create_product(creator_client, {"title": "Cap", "skus": [{"code": "CAP", "price": 9}]}).json()
    response = creator_client.get("/api/v1/products/")
    assert response.status_code == 200
    listed = response.json()
    assert {p["id"] for p in listed} == {mine_old["id"], mine_new["id"]}
    assert all(p["shop"] == creator_client.shop.pk for p in listed)
    assert "THEIRS" not in json.dumps(listed)


def test_products_list_is_empty_for_a_new_shop(creator_client):
    make_sku()
    response = creator_client.get("/api/v1/products/")
    assert response.status_code == 200 and response.json() == []


def test_other_shops_product_is_404_json(creator_client):
    theirs = make_sku(code="THEIRS").product
    response = creator_client.get(f"/api/v1/products/{theirs.pk}/")
    data = assert_error(response, 404, "not_found")
    assert "THEIRS" not in json.dumps(data)


def test_unknown_product_is_404_json(creator_client):
    assert_error(creator_client.get("/api/v1/products/999999/"), 404, "not_found")


def test_viewer_cannot_use_creator_product_endpoints(client):
    make_sku()
    client.force_login(UserFactory())
    before = db_state()
    assert_error(create_product(client, SIMPLE_PRODUCT), 403, "permission_denied")
    assert_error(client.get("/api/v1/products/"), 403, "permission_denied")
    assert_error(client.get(f"/api/v1/products/{Product.objects.get().pk}/"), 403, "permission_denied")
    assert db_state() == before


def test_anonymous_cannot_use_creator_product_endpoints(client):
    before = db_state()
    for response in (create_product(client, SIMPLE_PRODUCT), client.get("/api/v1/products/")):
        assert response.status_code in (401, 403)
        assert response.json()["code"] in {"not_authenticated", "permission_denied"}
    assert db_state() == before


def test_user_whose_creator_role_was_revoked_is_refused(client):
    former = CreatorFactory()
    former.is_creator = False
    former.save()
    client.force_login(former)
    before = db_state()
    assert_error(create_product(client, SIMPLE_PRODUCT), 403, "permission_denied")
    assert db_state() == before


# -- bad input on POST /api/v1/products/ --------------------------------------------------


def sku(**overrides):
    row = {"code": "OK-1", "price": "10.00", "stock": 1}
    row.update(overrides)
    return {k: v for k, v in row.items() if v is not ...}


@pytest.mark.parametrize(
    "body, field",
    [
        pytest.param({"skus": [sku()]}, "title", id="missing-title"),
        pytest.param({"title": "", "skus": [sku()]}, "title", id="blank-title"),
        pytest.param({"title": "   ", "skus": [sku()]}, "title", id="whitespace-title"),
        pytest.param({"title": 5, "skus": [sku()]}, "title", id="title-number"),
        pytest.param({"title": None, "skus": [sku()]}, "title", id="title-null"),
        pytest.param({"title": ["x"], "skus": [sku()]}, "title", id="title-list"),
        pytest.param({"title": "T" * 201, "skus": [sku()]}, "title", id="title-too-long"),
        pytest.param({"title": "x", "description": 7, "skus": [sku()]}, "description", id="description-number"),
        pytest.param({"title": "x", "description": "d" * 10_001, "skus": [sku()]}, "description", id="long-desc"),
        pytest.param({"title": "x"}, "skus", id="missing-skus"),
        pytest.param({"title": "x", "skus": []}, "skus", id="empty-skus"),
        pytest.param({"title": "x", "skus": None}, "skus", id="skus-null"),
        pytest.param({"title": "x", "skus": {"code": "A", "price": 1}}, "skus", id="skus-object"),
        pytest.param({"title": "x", "skus": "OK-1"}, "skus", id="skus-string"),
        pytest.param({"title": "x", "skus": [1]}, "skus", id="sku-row-number"),
        pytest.param({"title": "x", "skus": [sku(code=f"C-{i}") for i in range(101)]}, "skus", id="101-skus"),
        pytest.param({"title": "x", "skus": [sku(price=True)]}, "skus", id="price-true"),
        pytest.param({"title": "x", "skus": [sku(price=False)]}, "skus", id="price-false"),
        pytest.param({"title": "x", "skus": [sku(price={})]}, "skus", id="price-object"),
        pytest.param({"title": "x", "skus": [sku(price=[1])]}, "skus", id="price-list"),
        pytest.param({"title": "x", "skus": [sku(price="abc")]}, "skus", id="price-abc"),
        pytest.param({"title": "x", "skus": [sku(price="")]}, "skus", id="price-blank"),
        pytest.param({"title": "x", "skus": [sku(price=None)]}, "skus", id="price-null"),
        pytest.param({"title": "x", "skus": [sku(price="NaN")]}, "skus", id="price-nan"),
        pytest.param({"title": "x", "skus": [sku(price="Infinity")]}, "skus", id="price-infinity"),
        pytest.param({"title": "x", "skus": [sku(price="-1.00")]}, "skus", id="price-negative"),
        pytest.param({"title": "x", "skus": [sku(price="1.999")]}, "skus", id="price-3-decimals"),
        pytest.param({"title": "x", "skus": [sku(price="10000000000.00")]}, "skus", id="price-too-big"),
        pytest.param({"title": "x", "skus": [sku(price=...)]}, "skus", id="price-missing"),
        pytest.param({"title": "x", "skus": [sku(stock="5")]}, "skus", id="stock-string"),
        pytest.param({"title": "x", "skus": [sku(stock=1.5)]}, "skus", id="stock-float"),
        pytest.param({"title": "x", "skus": [sku(stock=True)]}, "skus", id="stock-true"),
        pytest.param({"title": "x", "skus": [sku(stock=-1)]}, "skus", id="stock-negative"),
        pytest.param({"title": "x", "skus": [sku(stock=10_000_001)]}, "skus", id="stock-over-max"),
        pytest.param({"title": "x", "skus": [sku(stock=2**63)]}, "skus", id="stock-huge"),
        pytest.param({"title": "x", "skus": [sku(stock=None)]}, "skus", id="stock-null"),
        pytest.param({"title": "x", "skus": [sku(code=...)]}, "skus", id="code-missing"),
        pytest.param({"title": "x", "skus": [sku(code="")]}, "skus", id="code-blank"),
        pytest.param({"title": "x", "skus": [sku(code=12)]}, "skus", id="code-number"),
        pytest.param({"title": "x", "skus": [sku(code="has space")]}, "skus", id="code-space"),
        pytest.param({"title": "x", "skus": [sku(code="a/b")]}, "skus", id="code-slash"),
        pytest.param({"title": "x", "skus": [sku(code="-leading")]}, "skus", id="code-leading-dash"),
        pytest.param({"title": "x", "skus": [sku(code="TÉE")]}, "skus", id="code-non-ascii"),
        pytest.param({"title": "x", "skus": [sku(code="A" * 65)]}, "skus", id="code-too-long"),
        pytest.param({"title": "x", "skus": [sku(currency="usd")]}, "skus", id="currency-lowercase"),
        pytest.param({"title": "x", "skus": [sku(currency="EURO")]}, "skus", id="currency-4-letters"),
        pytest.param({"title": "x", "skus": [sku(currency="EU")]}, "skus", id="currency-2-letters"),
        pytest.param({"title": "x", "skus": [sku(currency="E1R")]}, "skus", id="currency-digit"),
        pytest.param({"title": "x", "skus": [sku(currency=840)]}, "skus", id="currency-number"),
        pytest.param({"title": "x", "skus": [sku(per_buyer_limit=0)]}, "skus", id="limit-zero"),
        pytest.param({"title": "x", "skus": [sku(per_buyer_limit="2")]}, "skus", id="limit-string"),
        pytest.param({"title": "x", "skus": [sku(per_buyer_limit=10_001)]}, "skus", id="limit-too-big"),
        pytest.param({"title": "x", "skus": [sku(title=3)]}, "skus", id="sku-title-number"),
        pytest.param({"title": "x", "skus": [sku(code="GOOD-1"), sku(code="bad code")]}, "skus", id="second-row-bad"),
    ],
)
def test_invalid_product_bodies_are_400_and_write_nothing(creator_client, body, field):
    make_sku(shop=creator_client.shop, code="EXISTING")  # a shop with a location and events already
    before = db_state()
    response = create_product(creator_client, body)
    data = assert_error(response, 400, "invalid")
    assert_field_errors(data, field)
    assert db_state() == before


def test_invalid_sku_row_names_the_row_and_the_field(creator_client):
    response = create_product(creator_client, {"title": "x", "skus": [sku(code="GOOD-1"), sku(price="abc")]})
    data = assert_error(response, 400, "invalid")
    rows = data["errors"]["skus"]
    # Rows are keyed by their index in the request; valid rows are left out.
    assert set(rows) == {"1"} and set(rows["1"]) == {"price"}
    assert rows["1"]["price"] and all(e["code"] and e["message"] for e in rows["1"]["price"])


@pytest.mark.parametrize(
    "raw",
    ["{not json", '{"title": "x", "skus": [', "[1, 2]", "null", '"title"', "42", "", "NaN", '{"title": NaN}'],
)
def test_malformed_or_non_object_json_is_400(creator_client, raw):
    make_sku(shop=creator_client.shop)
    before = db_state()
    response = create_product(creator_client, None, raw=raw)
    assert response.status_code == 400, response.content
    assert response.json()["code"] in {"malformed_request", "invalid"}
    assert db_state() == before


def test_non_json_content_type_is_refused(creator_client):
    before = db_state()
    response = creator_client.post("/api/v1/products/", {"title": "x", "skus": "y"})  # multipart form
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
    assert db_state() == before


def test_duplicate_codes_in_one_request_are_409_and_write_nothing(creator_client):
    before = db_state()
    body = {"title": "x", "skus": [sku(code="DUP"), sku(code="OTHER"), sku(code="DUP")]}
    assert_error(create_product(creator_client, body), 409, "duplicate_sku_code")
    assert db_state() == before  # not even the default location


def test_code_already_used_in_the_shop_is_409_and_writes_nothing(creator_client):
    make_sku(shop=creator_client.shop, code="TAKEN", stock=4)
    before = db_state()
    body = {"title": "x", "skus": [sku(code="NEW-1"), sku(code="TAKEN")]}
    assert_error(create_product(creator_client, body), 409, "duplicate_sku_code")
    assert db_state() == before
    assert not SKU.objects.filter(code="NEW-1").exists()


def test_unknown_fields_are_ignored(creator_client):
    body = {**SIMPLE_PRODUCT, "shop": 999, "id": 5, "skus": [{**SIMPLE_PRODUCT["skus"][0], "shop": 999}]}
    response = create_product(creator_client, body)
    assert response.status_code == 201
    assert SKU.objects.get().shop == creator_client.shop


# -- GET /api/v1/skus/{code}/ -------------------------------------------------------------


def test_sku_is_public_with_the_contract_keys(client):
    sku_row = make_sku(code="TEE-L", price="19.90", stock=4, per_buyer_limit=3)
    response = client.get("/api/v1/skus/TEE-L/")  # anonymous
    assert response.status_code == 200
    data = response.json()
    assert {"code", "title", "price", "currency", "available"} <= set(data)
    assert set(data) == {"code", "title", "price", "currency", "available", "per_buyer_limit"}
    assert data == {
        "code": "TEE-L",
        "title": sku_row.product.title,
        "price": "19.90",
        "currency": "USD",
        "available": 4,
        "per_buyer_limit": 3,
    }


def test_sku_public_ignores_session_tokens_and_logins(client):
    make_sku(code="TEE-L", stock=4)
    assert client.get("/api/v1/skus/TEE-L/", headers={"X-Session-Token": "garbage"}).status_code == 200
    client.force_login(UserFactory())
    assert client.get("/api/v1/skus/TEE-L/").json()["available"] == 4


def test_sku_title_is_the_variant_title_when_set(client):
    item = make_sku(code="TEE-XL")
    item.title = "Tee, extra large"
    item.save()
    assert client.get("/api/v1/skus/TEE-XL/").json()["title"] == "Tee, extra large"


def test_sku_available_counts_the_default_location_only(client):
    item = make_sku(code="TEE-L", stock=4)
    elsewhere = Location.objects.create(shop=item.shop, name="Pop-up", kind=Location.Kind.VENUE)
    StockLevel.objects.create(sku=item, location=elsewhere, available=50)
    assert client.get("/api/v1/skus/TEE-L/").json()["available"] == 4


def test_sku_without_a_default_stock_level_has_zero_available(client):
    item = make_sku(code="TEE-L", stock=4)
    StockLevel.objects.filter(sku=item).delete()
    assert client.get("/api/v1/skus/TEE-L/").json()["available"] == 0


def test_unknown_sku_is_404(client):
    make_sku(code="TEE-L")
    assert_error(client.get("/api/v1/skus/NOPE/"), 404, "sku_not_found")
    assert_error(client.get("/api/v1/skus/tee-l/"), 404, "sku_not_found")  # codes are case-sensitive


@pytest.mark.parametrize("what", ["sku", "product"])
def test_inactive_sku_or_product_is_404(client, what):
    item = make_sku(code="GONE")
    target = item if what == "sku" else item.product
    target.is_active = False
    target.save()
    assert_error(client.get("/api/v1/skus/GONE/"), 404, "sku_not_found")


def test_same_code_in_two_shops_is_409_until_the_shop_is_given(client):
    a = make_sku(code="TEE", price="10.00", stock=1)
    b = make_sku(code="TEE", price="20.00", stock=2)
    assert_error(client.get("/api/v1/skus/TEE/"), 409, "ambiguous_sku")
    got_a = client.get(f"/api/v1/skus/TEE/?shop={a.shop.slug}")
    got_b = client.get("/api/v1/skus/TEE/", {"shop": b.shop.slug})
    assert got_a.status_code == got_b.status_code == 200
    assert (got_a.json()["price"], got_a.json()["available"]) == ("10.00", 1)
    assert (got_b.json()["price"], got_b.json()["available"]) == ("20.00", 2)
    assert_error(client.get("/api/v1/skus/TEE/?shop=no-such-shop"), 404, "sku_not_found")


def test_shop_filter_that_excludes_the_only_match_is_404(client):
    make_sku(code="SOLO")
    other = CreatorFactory().shop
    assert_error(client.get(f"/api/v1/skus/SOLO/?shop={other.slug}"), 404, "sku_not_found")


def test_ambiguity_ignores_inactive_duplicates(client):
    make_sku(code="TEE", price="10.00")
    retired = make_sku(code="TEE", price="20.00")
    retired.is_active = False
    retired.save()
    assert client.get("/api/v1/skus/TEE/").json()["price"] == "10.00"


# -- POST /api/v1/skus/{code}/stock/ ------------------------------------------------------


@pytest.fixture
def own_sku(creator_client):
    return make_sku(shop=creator_client.shop, code="MUG", stock=10)


def level_of(sku_obj, location=None):
    qs = StockLevel.objects.filter(sku=sku_obj)
    qs = qs.filter(location=location) if location else qs.filter(location__is_default=True)
    return qs.get()


def test_set_stock(creator_client, own_sku):
    level = level_of(own_sku)
    before_events = OutboxEvent.objects.count()
    response = post_stock(creator_client, "MUG", {"set": 3})
    assert response.status_code == 200, response.content
    assert response.json() == {"sku": "MUG", "location": level.location_id, "available": 3}
    assert level_of(own_sku).available == 3
    assert OutboxEvent.objects.count() == before_events + 1
    assert subset(events("stock.changed")[-1], STOCK_KEYS) == {
        "sku": "MUG",
        "sku_id": own_sku.pk,
        "shop": creator_client.shop.pk,
        "level": level.pk,
        "available": 3,
    }
    # The public read agrees.
    assert creator_client.get("/api/v1/skus/MUG/").json()["available"] == 3


def test_set_stock_to_zero_and_to_the_maximum(creator_client, own_sku):
    assert post_stock(creator_client, "MUG", {"set": 0}).json()["available"] == 0
    assert post_stock(creator_client, "MUG", {"set": 10_000_000}).json()["available"] == 10_000_000
    assert level_of(own_sku).available == 10_000_000


def test_add_stock_reports_the_absolute_count(creator_client, own_sku):
    response = post_stock(creator_client, "MUG", {"add": 5})
    assert response.status_code == 200 and response.json()["available"] == 15
    assert level_of(own_sku).available == 15
    assert events("stock.changed")[-1]["available"] == 15


def test_negative_add_removes_stock(creator_client, own_sku):
    response = post_stock(creator_client, "MUG", {"add": -4})
    assert response.status_code == 200 and response.json()["available"] == 6
    assert level_of(own_sku).available == 6
    assert events("stock.changed")[-1]["available"] == 6
    assert post_stock(creator_client, "MUG", {"add": -6}).json()["available"] == 0  # exactly down to zero


def test_removing_more_than_available_is_409_and_changes_nothing(creator_client, own_sku):
    before = db_state()
    assert_error(post_stock(creator_client, "MUG", {"add": -11}), 409, "sold_out")
    assert db_state() == before
    assert level_of(own_sku).available == 10


def test_every_change_emits_one_stock_changed_with_the_absolute_count(creator_client, own_sku):
    start = OutboxEvent.objects.count()
    for body in ({"add": 2}, {"add": -5}, {"set": 40}, {"add": 0}):
        assert post_stock(creator_client, "MUG", body).status_code == 200
    assert [e["available"] for e in events("stock.changed")[-4:]] == [12, 7, 40, 40]
    assert OutboxEvent.objects.count() == start + 4
    # start counted the SKU's creation: sku.created, its opening stock.changed, product.created
    assert OutboxEvent.objects.filter(type="stock.changed").count() == start + 4 - 2


def test_stock_at_another_own_location(creator_client, own_sku):
    venue = Location.objects.create(shop=creator_client.shop, name="Pop-up", kind=Location.Kind.VENUE)
    response = post_stock(creator_client, "MUG", {"location": venue.pk, "set": 7})
    assert response.status_code == 200
    assert response.json() == {"sku": "MUG", "location": venue.pk, "available": 7}
    assert level_of(own_sku, venue).available == 7
    assert level_of(own_sku).available == 10  # the default location is untouched
    assert events("stock.changed")[-1]["level"] == level_of(own_sku, venue).pk
    assert post_stock(creator_client, "MUG", {"location": venue.pk, "add": -2}).json()["available"] == 5


def test_stock_creates_the_default_location_when_missing(creator_client):
    item = make_sku(shop=creator_client.shop, code="MUG", stock=1)
    StockLevel.objects.all().delete()
    Location.objects.all().delete()
    response = post_stock(creator_client, "MUG", {"add": 2})
    assert response.status_code == 200 and response.json()["available"] == 2
    assert level_of(item).location.is_default


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"set": 1, "add": 1}, id="both"),
        pytest.param({"set": 0, "add": 0}, id="both-zero"),
        pytest.param({}, id="neither"),
        pytest.param({"location": 1}, id="only-location"),
    ],
)
def test_set_and_add_together_or_neither_is_400(creator_client, own_sku, body):
    before = db_state()
    data = assert_error(post_stock(creator_client, "MUG", body), 400, "invalid")
    assert data["errors"]["non_field_errors"][0]["code"] == "set_or_add"
    assert db_state() == before


@pytest.mark.parametrize(
    "body, field",
    [
        pytest.param({"set": "5"}, "set", id="set-string"),
        pytest.param({"set": 1.5}, "set", id="set-float"),
        pytest.param({"set": 2.0}, "set", id="set-whole-float"),
        pytest.param({"set": True}, "set", id="set-true"),
        pytest.param({"set": None}, "set", id="set-null"),
        pytest.param({"set": -1}, "set", id="set-negative"),
        pytest.param({"set": 10_000_001}, "set", id="set-over-max"),
        pytest.param({"set": 2**40}, "set", id="set-huge"),
        pytest.param({"set": [5]}, "set", id="set-list"),
        pytest.param({"add": "1"}, "add", id="add-string"),
        pytest.param({"add": False}, "add", id="add-false"),
        pytest.param({"add": {}}, "add", id="add-object"),
        pytest.param({"add": 10_000_001}, "add", id="add-over-max"),
        pytest.param({"add": -10_000_001}, "add", id="add-under-min"),
        pytest.param({"add": -(2**63)}, "add", id="add-huge-negative"),
        pytest.param({"location": "1", "set": 1}, "location", id="location-string"),
        pytest.param({"location": 0, "set": 1}, "location", id="location-zero"),
        pytest.param({"location": True, "set": 1}, "location", id="location-true"),
    ],
)
def test_invalid_stock_bodies_are_400_and_write_nothing(creator_client, own_sku, body, field):
    before = db_state()
    data = assert_error(post_stock(creator_client, "MUG", body), 400, "invalid")
    assert_field_errors(data, field)
    assert db_state() == before


@pytest.mark.parametrize("raw", ["{not json", "[]", "null", "5", '"set"', "", '{"set": Infinity}'])
def test_malformed_stock_json_is_400(creator_client, own_sku, raw):
    before = db_state()
    response = post_stock(creator_client, "MUG", raw=raw)
    assert response.status_code == 400, response.content
    assert response.json()["code"] in {"malformed_request", "invalid"}
    assert db_state() == before


def test_location_of_another_shop_is_404_and_writes_nothing(creator_client, own_sku):
    theirs = make_sku(code="THEIRS")
    their_location = Location.objects.get(shop=theirs.shop)
    before = db_state()
    assert_error(
        post_stock(creator_client, "MUG", {"location": their_location.pk, "set": 99}), 404, "location_not_found"
    )
    assert_error(post_stock(creator_client, "MUG", {"location": 999_999, "add": 1}), 404, "location_not_found")
    assert db_state() == before


def test_another_shops_sku_is_404_for_a_creator_and_nothing_is_written(creator_client):
    theirs = make_sku(code="THEIRS", stock=5)
    before = db_state()
    for body in ({"set": 0}, {"add": 100}, {"add": -5}):
        assert_error(post_stock(creator_client, "THEIRS", body), 404, "sku_not_found")
    assert db_state() == before
    assert level_of(theirs).available == 5


def test_shared_code_changes_only_the_creators_own_sku(creator_client):
    theirs = make_sku(code="TEE", stock=5)
    mine = make_sku(shop=creator_client.shop, code="TEE", stock=1)
    assert post_stock(creator_client, "TEE", {"set": 9}).json()["available"] == 9
    assert level_of(mine).available == 9
    assert level_of(theirs).available == 5


def test_unknown_sku_stock_is_404(creator_client):
    before = db_state()
    assert_error(post_stock(creator_client, "NOPE", {"set": 1}), 404, "sku_not_found")
    assert db_state() == before


def test_viewers_cannot_change_stock(client):
    item = make_sku(code="MUG", stock=5)
    client.force_login(UserFactory())
    before = db_state()
    assert_error(post_stock(client, "MUG", {"set": 0}), 403, "permission_denied")
    assert db_state() == before
    assert level_of(item).available == 5


def test_anonymous_cannot_change_stock(client):
    make_sku(code="MUG", stock=5)
    before = db_state()
    response = post_stock(client, "MUG", {"set": 0})
    assert response.status_code in (401, 403)
    assert response.json()["code"] in {"not_authenticated", "permission_denied"}
    assert db_state() == before


def test_stock_endpoint_only_accepts_post(creator_client, own_sku):
    assert_error(creator_client.get("/api/v1/skus/MUG/stock/"), 405, "method_not_allowed")


def test_adding_past_the_integer_range_is_refused_not_a_500(creator_client, own_sku):
    # Reachable with about 215 requests of {"add": 10_000_000}; start near the top instead.
    StockLevel.objects.filter(sku=own_sku).update(available=2**31 - 1_000)
    creator_client.raise_request_exception = False
    before = db_state()
    response = post_stock(creator_client, "MUG", {"add": 10_000_000})
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert response.json()["code"]
        assert db_state() == before


def test_adding_past_the_stock_limit_is_409_and_changes_nothing(creator_client, own_sku):
    from apps.catalog.services import MAX_STOCK_PER_LEVEL

    StockLevel.objects.filter(sku=own_sku).update(available=MAX_STOCK_PER_LEVEL - 5)
    before = db_state()
    assert_error(post_stock(creator_client, "MUG", {"add": 6}), 409, "stock_limit_exceeded")
    assert db_state() == before
    assert post_stock(creator_client, "MUG", {"add": 5}).json()["available"] == MAX_STOCK_PER_LEVEL


def test_cookie_session_writes_need_the_csrf_token():
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    creator = CreatorFactory()
    make_sku(shop=creator.shop, code="MUG", stock=5)
    strict.force_login(creator)
    before = db_state()
    assert_error(create_product(strict, SIMPLE_PRODUCT), 403, "permission_denied")
    assert_error(post_stock(strict, "MUG", {"set": 0}), 403, "permission_denied")
    assert db_state() == before
