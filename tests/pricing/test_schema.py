"""POST /api/v1/quotes/ is in the OpenAPI schema with its body, answer and error codes."""

import json

import pytest

pytestmark = pytest.mark.django_db


def test_quotes_document_their_body_answer_and_error_codes(client):
    schema = json.loads(client.get("/api/v1/schema/?format=json").content)
    operation = schema["paths"]["/api/v1/quotes/"]["post"]
    assert operation["operationId"] == "quotes_create"
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert {"sku", "quantity", "lines", "stream", "shop", "coupon"} <= set(
        schema["components"]["schemas"][body]["properties"]
    )
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][answer]["properties"]) == {
        "lines",
        "subtotal",
        "discount",
        "shipping",
        "total",
        "currency",
        "suggestions",
    }
    codes = {status: response["description"] for status, response in operation["responses"].items()}
    assert "duplicate_sku" in codes["400"] and "several_shops" in codes["400"]
    assert "sku_not_found" in codes["404"] and "sold_out" in codes["409"] and "ambiguous_sku" in codes["409"]
