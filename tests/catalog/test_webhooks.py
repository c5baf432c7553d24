"""Price-tracking webhooks: Standard Webhooks signatures, stale timestamps, replayed ids."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from standardwebhooks.webhooks import Webhook

from apps.catalog.models import SKU, PriceMapping, PriceSource, WebhookDelivery
from apps.catalog.tasks import prune_webhook_deliveries
from creatorcommerce.spine.models import OutboxEvent
from tests.factories import make_sku

pytestmark = pytest.mark.django_db


@pytest.fixture
def source():
    sku = make_sku(code="TEE-RED", price="20.00")
    src = PriceSource.objects.create(shop=sku.shop, name="Tracker")
    PriceMapping.objects.create(source=src, external_id="ext-123", sku=sku)
    return src


def deliver(client, source, payload, *, msg_id="msg_1", when=None, secret=None, headers=None, source_id=None):
    body = payload if isinstance(payload, str) else json.dumps(payload)
    when = when or datetime.now(tz=UTC)
    signature = Webhook(secret or source.secret).sign(msg_id=msg_id, timestamp=when, data=body)
    sent = {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())), "webhook-signature": signature}
    sent.update(headers or {})
    return client.post(
        f"/hooks/price/?source={source_id or source.public_id}",
        body,
        content_type="application/json",
        headers={k: v for k, v in sent.items() if v is not None},
    )


def change(price="18.50", sku="ext-123", **extra):
    return {"type": "price.changed", "timestamp": "2026-11-25T10:00:00Z", "data": {"sku": sku, "price": price, **extra}}


def price_of(code="TEE-RED"):
    return SKU.objects.get(code=code).price


def test_good_signature_changes_price_and_emits_event(client, source):
    response = deliver(client, source, change("18.50"))
    assert response.status_code == 200
    assert response.json() == {"status": "applied", "applied": ["TEE-RED"], "unmapped": []}
    assert price_of() == Decimal("18.50")
    event = OutboxEvent.objects.filter(type="price.changed").get()
    assert event.payload["price"] == "18.50" and event.payload["old_price"] == "20.00"


def test_replayed_webhook_id_is_200_and_changes_nothing_twice(client, source):
    assert deliver(client, source, change("18.50")).status_code == 200
    SKU.objects.filter(code="TEE-RED").update(price=Decimal("30.00"))  # a creator changed it since
    again = deliver(client, source, change("18.50"))
    assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    assert price_of() == Decimal("30.00")
    assert OutboxEvent.objects.filter(type="price.changed").count() == 1


def test_bad_signature_is_401(client, source):
    other = "whsec_" + "A" * 43
    response = deliver(client, source, change(), secret=other)
    assert response.status_code == 401 and response.json()["code"] == "invalid_signature"
    assert price_of() == Decimal("20.00")
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("minutes", [-6, 6])
def test_stale_or_future_timestamp_is_401(client, source, minutes):
    response = deliver(client, source, change(), when=datetime.now(tz=UTC) + timedelta(minutes=minutes))
    assert response.status_code == 401
    assert price_of() == Decimal("20.00")


@pytest.mark.parametrize(
    "headers",
    [
        {"webhook-signature": None},
        {"webhook-id": None},
        {"webhook-timestamp": "yesterday"},
        {"webhook-signature": "garbage-without-comma"},
        {"webhook-signature": "v1,not*base64"},
    ],
)
def test_missing_or_malformed_headers_are_401(client, source, headers):
    response = deliver(client, source, change(), headers=headers)
    assert response.status_code == 401 and response.json()["code"] == "invalid_signature"


@pytest.mark.parametrize("source_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_unknown_source_is_401(client, source, source_id):
    assert deliver(client, source, change(), source_id=source_id).status_code == 401


def test_inactive_source_is_401(client, source):
    PriceSource.objects.filter(pk=source.pk).update(is_active=False)
    assert deliver(client, source, change()).status_code == 401


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        {"type": "stock.changed", "data": {"sku": "ext-123", "price": "1"}},
        change(price="-1"),
        change(price="abc"),
        change(price=True),
        change(price="1.234"),
        change(price="NaN"),
        change(currency="usd"),
        {"type": "price.changed", "data": []},
    ],
)
def test_signed_but_invalid_payload_is_400_and_nothing_changes(client, source, payload):
    response = deliver(client, source, payload)
    assert response.status_code == 400 and response.json()["code"] == "invalid_payload"
    assert price_of() == Decimal("20.00")
    assert not WebhookDelivery.objects.exists()


def test_unmapped_item_is_ignored(client, source):
    response = deliver(client, source, change(sku="unknown-item"))
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    assert price_of() == Decimal("20.00")


def test_other_shops_sku_cannot_be_reached(client, source):
    """A mapping only reaches SKUs through its own source; another shop's code is unmapped."""
    make_sku(code="OTHER-1", price="5.00")
    response = deliver(client, source, change(sku="OTHER-1", price="0.01"))
    assert response.json()["status"] == "ignored"
    assert price_of("OTHER-1") == Decimal("5.00")


def test_get_is_405_json(client):
    response = client.get("/hooks/price/")
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"


def test_old_deliveries_are_pruned(client, source):
    deliver(client, source, change())
    WebhookDelivery.objects.update(received_at=datetime.now(tz=UTC) - timedelta(days=8))
    assert prune_webhook_deliveries() == 1


def test_overlong_webhook_id_is_401_not_500(client, source):
    response = deliver(client, source, change(), msg_id="m" * 201)
    assert response.status_code == 401 and not WebhookDelivery.objects.exists()
