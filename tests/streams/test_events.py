"""The exact events the streams' services send (docs/events.md): type, payload and groups,
each checked against its declared schema by ``captured_events``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.catalog.models import StockLevel
from apps.orders.services import order_place, request_fingerprint
from apps.streams.models import FlashDeal
from apps.streams.services import (
    deal_close_at_set,
    pin_add,
    pin_remove,
    presence_join,
    presence_leave,
    presence_publish,
    stream_end,
    stream_start,
)
from tests.helpers import captured_events, expected_stock_changed

pytestmark = pytest.mark.django_db(transaction=True)


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _deal_event(kind, deal, *, open_body: bool):
    deal.refresh_from_db()
    body = {
        "id": deal.pk,
        "price": "12.00",
        "ends_at": _iso(deal.closes_at),
        "per_buyer_limit": 2,
        "remaining": deal.remaining,
        "version": deal.version,
    }
    payload = {
        "stream": deal.stream_id,
        "sku": deal.sku.code,
        "sku_id": deal.sku_id,
        "deal_id": deal.pk,
        "version": deal.version,
        "remaining": deal.remaining,
        "deal": body if open_body else None,
    }
    return (f"deal.{kind}", payload, [f"stream.{deal.stream_id}"])


def test_start_sends_stream_started_then_opens_due_deals(creator, deal_sku, make_stream, make_deal):
    now = timezone.now()
    stream = make_stream(creator.shop, starts_at=now)
    deal = make_deal(stream, deal_sku, opens_at=now - timedelta(minutes=1), closes_at=now + timedelta(hours=1))
    with captured_events() as events:
        stream_start(stream=stream, now=now)
        stream_start(stream=stream, now=now)  # already live: nothing more
    started = {"stream": stream.pk, "shop": creator.shop.pk, "status": "live"}
    assert events == [
        ("stream.started", started, [f"stream.{stream.pk}", f"shop.{creator.shop.pk}"]),
        expected_stock_changed(deal_sku, 25),
        _deal_event("opened", deal, open_body=True),
    ]
    assert events[2][1]["remaining"] == 5


def test_end_closes_open_deals_giving_units_back_then_sends_stream_ended(live_stream, open_deal, deal_sku):
    with captured_events() as events:
        stream_end(stream=live_stream)
    ended = {"stream": live_stream.pk, "shop": live_stream.shop_id, "status": "ended"}
    assert events == [
        expected_stock_changed(deal_sku, 30),
        _deal_event("closed", open_deal, open_body=False),
        ("stream.ended", ended, [f"stream.{live_stream.pk}", f"shop.{live_stream.shop_id}"]),
    ]
    assert events[1][1]["remaining"] == 0


def test_moving_a_deals_end_sends_deal_changed(open_deal):
    closes_at = open_deal.closes_at + timedelta(minutes=30)
    with captured_events() as events:
        deal_close_at_set(deal=open_deal, closes_at=closes_at)
    assert events == [_deal_event("changed", open_deal, open_body=True)]
    assert events[0][1]["deal"]["ends_at"] == _iso(closes_at)


def test_pinning_and_unpinning_send_the_whole_list(creator, deal_sku, plain_sku, make_stream):
    stream = make_stream(creator.shop)
    pin_add(stream=stream, sku=deal_sku)
    with captured_events() as events:
        pin_add(stream=stream, sku=plain_sku)
        pin_add(stream=stream, sku=plain_sku)  # pinned already: nothing to tell
        pin_remove(stream=stream, sku=deal_sku)

    def pin(sku, price, available):
        level = StockLevel.objects.get(sku=sku)
        return {
            "sku": sku.code,
            "sku_id": sku.pk,
            "title": f"Product {sku.code}",
            "image_url": "",
            "price": price,
            "currency": "USD",
            "per_buyer_limit": None,
            "available": available,
            "level": level.pk,
            "version": level.version,
            "deal": None,
        }

    deal_pin, plain_pin = pin(deal_sku, "20.00", 30), pin(plain_sku, "5.00", 10)
    groups = [f"stream.{stream.pk}"]
    assert events == [
        ("pins.changed", {"stream": stream.pk, "pins": [deal_pin, plain_pin]}, groups),
        ("pins.changed", {"stream": stream.pk, "pins": [plain_pin]}, groups),
    ]


def test_a_deal_buy_sends_deal_changed_then_order_placed_to_shop_and_stream(live_stream, open_deal, buyer):
    with captured_events() as events:
        outcome = order_place(
            buyer=buyer,
            sku_code=open_deal.sku.code,
            quantity=2,
            idempotency_key="events-deal-buy-1",
            fingerprint=request_fingerprint({"sku": open_deal.sku.code, "quantity": 2}),
            stream_id=live_stream.pk,
        )
    assert outcome.status == 201
    shop = live_stream.shop_id
    assert events == [
        _deal_event("changed", open_deal, open_body=True),
        (
            "order.placed",
            {
                "order": outcome.order.pk,
                "shop": shop,
                "stream": live_stream.pk,
                "buyer": buyer.pk,
                "buyer_name": "Ada",
                "subtotal": str(open_deal.sku.price * 2),
                "total": "24.00",
                "currency": "USD",
                "lines": [
                    {
                        "sku": open_deal.sku.code,
                        "sku_id": open_deal.sku_id,
                        "quantity": 2,
                        "unit_price": str(open_deal.sku.price),
                        "adjustments": [
                            {
                                "source": "deal",
                                "id": open_deal.pk,
                                "label": "Flash deal",
                                "amount": str((open_deal.price - open_deal.sku.price) * 2),
                            }
                        ],
                        "total": "24.00",
                    }
                ],
            },
            [f"shop.{shop}", f"stream.{live_stream.pk}"],
        ),
        # The capture handler, run here eagerly after the commit (docs/events.md).
        ("order.captured", {"order": outcome.order.pk, "shop": shop}, [f"shop.{shop}"]),
    ]
    assert events[0][1]["remaining"] == 3 and FlashDeal.objects.get(pk=open_deal.pk).remaining == 3


def test_presence_publish_sends_a_changed_count_once(live_stream):
    presence_join(stream_id=live_stream.pk)
    presence_join(stream_id=live_stream.pk)
    try:
        with captured_events() as events:
            assert presence_publish(stream_ids=[live_stream.pk]) == 1
            assert presence_publish(stream_ids=[live_stream.pk]) == 0  # unchanged: not again
        assert events == [("presence.counted", {"stream": live_stream.pk, "viewers": 2}, [f"stream.{live_stream.pk}"])]
    finally:
        presence_leave(stream_id=live_stream.pk)
        presence_leave(stream_id=live_stream.pk)
