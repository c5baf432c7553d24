"""Price-tracking webhooks in: Standard Webhooks signatures, replay window, dedup by id."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from .exceptions import WebhookPayloadInvalid, WebhookSignatureInvalid
from .models import PriceMapping, PriceSource, WebhookDelivery
from .services import sku_set_price

MAX_BODY = 64 * 1024


def price_webhook_verify(*, source_id: str | None, body: bytes, headers) -> tuple[PriceSource, str, dict]:
    """Check the signature (and its 5-minute timestamp window) with the source's secret.

    Returns the source, the webhook-id and the parsed payload; raises
    WebhookSignatureInvalid for anything that cannot be verified (unknown source, missing
    headers, stale or future timestamp, wrong signature) and WebhookPayloadInvalid for a
    verified body that is not a price change.
    """
    source = _source(source_id)
    if source is None or len(body) > MAX_BODY:
        raise WebhookSignatureInvalid()
    signed = {k: headers.get(k, "") for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    if len(signed["webhook-id"]) > 200:  # what WebhookDelivery stores; no sender uses longer ids
        raise WebhookSignatureInvalid(reason="webhook-id too long")
    try:
        Webhook(source.secret).verify(body, signed, json_parse=False)
    except (WebhookVerificationError, ValueError) as exc:  # ValueError: malformed b64 / signature list
        raise WebhookSignatureInvalid(reason=str(exc)) from exc
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise WebhookPayloadInvalid("The body is not JSON.") from exc
    return source, signed["webhook-id"], payload


def _source(source_id: str | None) -> PriceSource | None:
    try:
        public_id = uuid.UUID(source_id or "")
    except ValueError:
        return None
    return PriceSource.objects.filter(public_id=public_id, is_active=True).first()


def _price_changes(payload) -> list[tuple[str, Decimal, str | None]]:
    """``{"type": "price.changed", "data": {"sku", "price", "currency"?}}``; ``data`` may also
    be a list of such objects."""
    if not isinstance(payload, dict) or payload.get("type") != "price.changed":
        raise WebhookPayloadInvalid("Expected type 'price.changed'.")
    items = payload.get("data")
    items = items if isinstance(items, list) else [items]
    if not items or len(items) > 500:
        raise WebhookPayloadInvalid("Expected 1 to 500 price changes in 'data'.")
    changes = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("sku"), str) or isinstance(item.get("price"), bool):
            raise WebhookPayloadInvalid("Each change needs 'sku' (string) and 'price'.")
        try:
            price = Decimal(str(item["price"]))
        except (InvalidOperation, KeyError) as exc:
            raise WebhookPayloadInvalid("'price' must be a decimal number.") from exc
        if not price.is_finite() or price < 0 or price >= Decimal("1e10") or price != price.quantize(Decimal("0.01")):
            raise WebhookPayloadInvalid("'price' must be between 0 and 9999999999.99 with at most 2 decimals.")
        currency = item.get("currency")
        if currency is not None and (not isinstance(currency, str) or len(currency) != 3 or not currency.isupper()):
            raise WebhookPayloadInvalid("'currency' must be a three-letter ISO 4217 code.")
        changes.append((item["sku"], price, currency))
    return changes


def price_webhook_apply(*, source: PriceSource, webhook_id: str, payload) -> dict:
    """Apply a verified delivery once: the delivery row and the price changes commit together,
    so a repeated webhook-id changes nothing."""
    changes = _price_changes(payload)
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(source=source, webhook_id=webhook_id, outcome="applied")
            mappings = dict(
                PriceMapping.objects.filter(source=source, external_id__in=[c[0] for c in changes]).values_list(
                    "external_id", "sku_id"
                )
            )
            applied, unmapped = [], []
            for external_id, price, currency in changes:
                sku_id = mappings.get(external_id)
                if sku_id is None:
                    unmapped.append(external_id)
                    continue
                sku = sku_set_price(sku_id=sku_id, price=price, currency=currency, source=f"webhook:{source.pk}")
                applied.append(sku.code)
            if not applied:
                delivery.outcome = "ignored"
                delivery.save(update_fields=["outcome"])
    except IntegrityError:
        return {"status": "duplicate"}
    return {"status": "applied" if applied else "ignored", "applied": applied, "unmapped": unmapped}
