"""The orders API over HTTP: one-tap buy, idempotency headers, checkout details, bad input."""

import json

import pytest

from apps.catalog.models import StockLevel
from apps.orders.models import Address, IdempotencyRecord, Order, PaymentMethod
from tests.factories import UserFactory, make_buyer, make_sku

pytestmark = pytest.mark.django_db


@pytest.fixture
def buyer_client(client):
    buyer = make_buyer()
    client.force_login(buyer)
    client.buyer = buyer
    return client


def post_buy(client, body, key="key-00000001", raw=None):
    headers = {"Idempotency-Key": key} if key is not None else {}
    data = raw if raw is not None else json.dumps(body)
    return client.post("/api/v1/orders/", data, content_type="application/json", headers=headers)


def test_one_tap_buy_and_history(buyer_client):
    sku = make_sku(stock=3, price="9.99")
    response = post_buy(buyer_client, {"sku": sku.code, "quantity": 1})
    assert response.status_code == 201, response.content
    order = response.json()
    assert order["status"] == "paid" and order["total"] == "9.99" and order["receipt"].count(".") == 2
    assert buyer_client.get("/api/v1/orders/").json()[0]["id"] == order["id"]
    assert buyer_client.get(f"/api/v1/orders/{order['id']}/").json() == order
    assert buyer_client.get(f"/api/v1/skus/{sku.code}/").json()["available"] == 2


def test_replay_same_status_and_body_and_header(buyer_client):
    sku = make_sku(stock=3)
    first = post_buy(buyer_client, {"sku": sku.code, "quantity": 1})
    again = post_buy(buyer_client, {"quantity": 1, "sku": sku.code})  # same body, other key order
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert StockLevel.objects.get(sku=sku).available == 2


def test_key_reused_with_other_body_is_422(buyer_client):
    sku = make_sku(stock=3)
    post_buy(buyer_client, {"sku": sku.code, "quantity": 1})
    response = post_buy(buyer_client, {"sku": sku.code, "quantity": 2})
    assert response.status_code == 422 and response.json()["code"] == "idempotency_key_reused"


@pytest.mark.parametrize(
    "key, code",
    [
        (None, "idempotency_key_missing"),
        ("short", "idempotency_key_invalid"),
        ("has space in it", "idempotency_key_invalid"),
        ("x" * 256, "idempotency_key_invalid"),
    ],
)
def test_bad_idempotency_keys(buyer_client, key, code):
    sku = make_sku(stock=3)
    response = post_buy(buyer_client, {"sku": sku.code}, key=key)
    assert response.status_code == 400 and response.json()["code"] == code
    assert not Order.objects.exists()


def test_other_users_order_is_404(buyer_client, client):
    sku = make_sku(stock=3)
    order_id = post_buy(buyer_client, {"sku": sku.code}).json()["id"]
    buyer_client.force_login(UserFactory())
    response = buyer_client.get(f"/api/v1/orders/{order_id}/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_first_time_buyer_saves_checkout_then_buys(client):
    sku = make_sku(stock=3)
    viewer = UserFactory()
    client.force_login(viewer)
    blocked = post_buy(client, {"sku": sku.code})
    assert blocked.status_code == 409 and blocked.json()["code"] == "checkout_incomplete"
    assert (
        client.post("/api/v1/me/payment-methods/", {"token": "tok_ok"}, content_type="application/json").status_code
        == 201
    )
    address = {"name": "Ada", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "de"}
    saved = client.put("/api/v1/me/address/", address, content_type="application/json")
    assert saved.status_code == 200 and saved.json()["country"] == "DE"
    assert post_buy(client, {"sku": sku.code}, key="after-checkout-1").status_code == 201


def test_declined_card_is_402_and_stock_returned(client):
    sku = make_sku(stock=3)
    client.force_login(make_buyer(token="tok_declined"))
    response = post_buy(client, {"sku": sku.code, "quantity": 2})
    assert response.status_code == 402 and response.json()["code"] == "payment_declined"
    assert StockLevel.objects.get(sku=sku).available == 3


@pytest.mark.parametrize(
    "body, field",
    [
        ({"sku": "X", "quantity": 0}, "quantity"),
        ({"sku": "X", "quantity": -1}, "quantity"),
        ({"sku": "X", "quantity": 10**12}, "quantity"),
        ({"sku": "X", "quantity": "1"}, "quantity"),
        ({"sku": "X", "quantity": 1.5}, "quantity"),
        ({"sku": "X", "quantity": True}, "quantity"),
        ({"sku": 12, "quantity": 1}, "sku"),
        ({"quantity": 1}, "sku"),
        ({"sku": "X", "stream": "abc"}, "stream"),
    ],
)
def test_invalid_buy_bodies_are_400_with_field_codes(buyer_client, body, field):
    response = post_buy(buyer_client, body)
    assert response.status_code == 400
    data = response.json()
    assert data["code"] == "invalid" and field in data["errors"]
    assert all("code" in e for e in data["errors"][field])
    assert not Order.objects.exists() and not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", "null", '"sku"'])
def test_malformed_or_non_object_json_is_400(buyer_client, raw):
    response = post_buy(buyer_client, None, raw=raw)
    assert response.status_code == 400
    assert response.json()["code"] in {"malformed_request", "invalid"}
    assert not Order.objects.exists()


def test_unknown_sku_is_404(buyer_client):
    response = post_buy(buyer_client, {"sku": "NOPE"})
    assert response.status_code == 404 and response.json()["code"] == "sku_not_found"


def test_same_code_in_two_shops_needs_the_shop(buyer_client):
    a = make_sku(code="TEE", stock=5)
    make_sku(code="TEE", stock=5)
    response = post_buy(buyer_client, {"sku": "TEE"}, key="ambiguous-1")
    assert response.status_code == 409 and response.json()["code"] == "ambiguous_sku"
    response = post_buy(buyer_client, {"sku": "TEE", "shop": a.shop.slug}, key="with-shop-1")
    assert response.status_code == 201


def test_buy_needs_a_login(client):
    response = post_buy(client, {"sku": "X"})
    assert response.status_code in (401, 403)
    assert response.json()["code"] in {"not_authenticated", "permission_denied"}


def test_session_cookie_buy_needs_csrf(buyer_client):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(buyer_client.buyer)
    sku = make_sku(stock=3)
    response = post_buy(strict, {"sku": sku.code})
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


@pytest.mark.parametrize(
    "body, code",
    [({"token": "tok_nope"}, "invalid_payment_token"), ({"token": 5}, "invalid"), ({}, "invalid")],
)
def test_bad_payment_method_is_400(buyer_client, body, code):
    before = PaymentMethod.objects.count()
    response = buyer_client.post("/api/v1/me/payment-methods/", body, content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == code
    assert PaymentMethod.objects.count() == before


@pytest.mark.parametrize(
    "body",
    [
        {"name": "A", "line1": "x", "city": "y", "postal_code": "1", "country": "Germany"},
        {"name": "A", "line1": "x", "city": "y", "postal_code": "1", "country": "1A"},
        {"name": "A", "line1": "x", "city": "y", "country": "DE"},
        {"name": ["A"], "line1": "x", "city": "y", "postal_code": "1", "country": "DE"},
    ],
)
def test_bad_address_is_400_and_keeps_the_old_one(buyer_client, body):
    before = Address.objects.get(user=buyer_client.buyer).line1
    response = buyer_client.put("/api/v1/me/address/", body, content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert Address.objects.get(user=buyer_client.buyer).line1 == before


def test_creator_endpoints_refuse_viewers(buyer_client):
    response = buyer_client.post("/api/v1/products/", {"title": "x", "skus": []}, content_type="application/json")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


def test_rate_limit_is_429(buyer_client, settings, monkeypatch):
    from django.core.cache import cache

    from creatorcommerce.throttling import FixedWindowThrottle

    # One fixed window for the whole test: three requests straddling a minute's edge would
    # fall in two windows (and all pass).
    monkeypatch.setattr(FixedWindowThrottle, "timer", lambda self: 1_800_000_030.0)
    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"buy": "2/min"}}
    sku = make_sku(stock=10)
    codes = [post_buy(buyer_client, {"sku": sku.code}, key=f"rate-limit-{i}").status_code for i in range(3)]
    assert codes == [201, 201, 429]
    assert post_buy(buyer_client, {"sku": sku.code}, key="rate-limit-9").json()["code"] == "rate_limited"
    cache.clear()


def test_retry_with_same_key_after_completing_checkout_buys(client):
    """checkout_incomplete is not remembered: the page saves the card and the address and
    retries the same request with the same key."""
    sku = make_sku(stock=3)
    client.force_login(UserFactory())
    first = post_buy(client, {"sku": sku.code}, key="checkout-then-buy")
    assert first.status_code == 409 and first.json()["code"] == "checkout_incomplete"
    client.post("/api/v1/me/payment-methods/", {"token": "tok_ok"}, content_type="application/json")
    address = {"name": "Ada", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"}
    client.put("/api/v1/me/address/", address, content_type="application/json")
    assert post_buy(client, {"sku": sku.code}, key="checkout-then-buy").status_code == 201


def test_a_total_too_large_to_charge_is_400(buyer_client):
    sku = make_sku(stock=200, price="9999999999.00")
    response = post_buy(buyer_client, {"sku": sku.code, "quantity": 100}, key="too-much-money")
    assert response.status_code == 400 and response.json()["code"] == "amount_too_large"
    assert not Order.objects.exists()


def test_replay_of_an_expired_reservation_gives_the_same_409(buyer_client):
    from datetime import timedelta

    from django.utils import timezone

    from apps.orders import services

    sku = make_sku(stock=2)
    real_sign = services.receipt_sign

    def slow_sign(*, payload):  # the sweeper releases the reservation while we sign
        Order.objects.filter(pk=payload["order"]).update(created_at=timezone.now() - timedelta(hours=1))
        services.orders_release_expired()
        return real_sign(payload=payload)

    services.receipt_sign = slow_sign
    try:
        first = post_buy(buyer_client, {"sku": sku.code}, key="expired-key-1")
    finally:
        services.receipt_sign = real_sign
    again = post_buy(buyer_client, {"sku": sku.code}, key="expired-key-1")
    assert first.status_code == again.status_code == 409
    assert first.json() == again.json() and first.json()["code"] == "reservation_expired"


@pytest.mark.parametrize(
    "body",
    [
        {"sku": "TEE-1"},
        {"sku": "TEE-1", "quantity": 3},
        {"sku": " TEE-1 "},
        {"sku": "TEE-1\x00"},
        {"sku": "TEE-\ud800"},
        {"sku": ""},
        {"sku": "x" * 64},
        {"sku": "x" * 65},
        {"sku": 5},
        {"sku": None},
        {"sku": "TEE-1", "quantity": 0},
        {"sku": "TEE-1", "quantity": True},
        {"sku": "TEE-1", "quantity": 1.0},
        {"sku": "TEE-1", "quantity": "2"},
        {"sku": "TEE-1", "quantity": 10**9},
        {"sku": "TEE-1", "quantity": None},
        {"sku": "TEE-1", "stream": 3},
        {"sku": "TEE-1", "shop": "a-shop"},
        {"sku": "TEE-1", "colour": "red"},
        {"quantity": 1},
        {},
        [],
        "TEE-1",
    ],
)
def test_the_buy_body_fast_path_agrees_with_the_serializer(body, settings):
    """_buy_body checks the common shape without DRF's serializer; for every input it must
    give what BuySerializer gives: the same data, or the same 400."""
    from rest_framework.exceptions import ValidationError

    from apps.orders.api import BuySerializer, _buy_body
    from creatorcommerce.api import validated

    def outcome(fn):
        try:
            return ("ok", dict(fn(body)))
        except ValidationError as exc:
            return ("error", exc.detail)

    assert outcome(_buy_body) == outcome(lambda b: validated(BuySerializer, b))


@pytest.mark.parametrize("field, value", [("stream", 10**23), ("quantity", 10**23), ("stream", 2**63)])
def test_an_integer_past_what_the_database_holds_is_a_400(buyer_client, field, value):
    """A stream id of 10**23 reached the database driver (OverflowError: a 500)."""
    sku = make_sku(stock=5)
    response = post_buy(buyer_client, {"sku": sku.code, field: value}, key=f"huge-{field}-{value}"[:60])
    assert response.status_code == 400, response.content
    assert response.json()["code"] in {"invalid", "max_value"}
    assert sku.stock_levels.get().available == 5
