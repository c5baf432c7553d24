"""Every public endpoint is in the OpenAPI schema, with its request body and error codes."""

import json

import pytest

pytestmark = pytest.mark.django_db

EXPECTED = {
    "/api/v1/me/": {"get"},
    "/api/v1/products/": {"get", "post"},
    "/api/v1/products/{id}/": {"get"},
    "/api/v1/skus/{code}/": {"get"},
    "/api/v1/skus/{code}/stock/": {"post"},
    "/api/v1/orders/": {"get", "post"},
    "/api/v1/orders/{id}/": {"get"},
    "/api/v1/me/payment-methods/": {"get", "post"},
    "/api/v1/me/address/": {"get", "put"},
    "/hooks/price/": {"post"},
    "/.well-known/jwks.json": {"get"},
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_every_endpoint_is_documented(schema):
    for path, methods in EXPECTED.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]), (path, set(schema["paths"][path]))


def test_buy_documents_its_body_header_and_error_codes(schema):
    op = schema["paths"]["/api/v1/orders/"]["post"]
    assert "requestBody" in op
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in op["parameters"])
    for status in ("201", "400", "402", "404", "409", "422", "429"):
        assert status in op["responses"], status
    assert "sold_out" in op["responses"]["409"]["description"]
    assert "idempotency_key_reused" in op["responses"]["422"]["description"]


def test_docs_page_is_served_without_a_cdn(client):
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    assert b"cdn.jsdelivr" not in page.content and b"unpkg.com" not in page.content
