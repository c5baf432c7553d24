"""On-site stock and bundles over the viewer socket (docs/geofences.md, docs/streams.md):
the snapshot's ``venues`` and ``bundles``, a venue's row as a ``stock`` message with its
``venue``, and a price change (the price-tracking webhook's path) re-pricing a bundle card live."""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from apps.catalog.services import sku_set_price, stock_adjust
from tests.bundle_helpers import make_bundle, make_venue
from tests.helpers import WAIT
from tests.streams.sockets import open_socket, receive_until, token_for

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


async def test_venue_stock_and_bundles_reach_viewers_live(layer, stream_setup, session_key, close_db_after):
    stream, (anchor, other) = stream_setup["stream"], stream_setup["skus"]
    shop = stream_setup["shop"]

    def set_up():
        venue = make_venue(shop, name="Pop-up", stock={anchor: 4, other: 2})
        rule = make_bundle(shop, anchor, [other], price="15.00", venue=venue, threshold=2, label="Pair")
        from creatorcommerce.spine.fanout import drain

        drain()
        return venue, rule

    venue, rule = await sync_to_async(set_up)()
    comm = await open_socket(stream, token_for(stream, session_key=session_key), session_key=session_key)
    snapshot = await comm.receive_json_from(timeout=WAIT)
    assert snapshot["venues"] == {str(venue.pk): {"name": "Pop-up", "stock": {"PIN-0": 4, "PIN-1": 2}}}
    ((card,),) = [snapshot["bundles"]]
    assert (card["bundle"], card["anchor"], card["price"], card["saving"], card["trigger"], card["threshold"]) == (
        rule.pk,
        "PIN-0",
        "15.00",
        "5.00",
        "low_stock",
        2,
    )

    def venue_sells_then_price_changes():
        with transaction.atomic():
            stock_adjust(sku=anchor, location=venue, add=-2)
        sku_set_price(sku_id=other.pk, price=Decimal("14.00"), source="webhook:1")

    await sync_to_async(venue_sells_then_price_changes)()
    messages = await receive_until(comm, lambda got: any(m["type"] == "bundle" for m in got))
    venue_stock = [m for m in messages if m["type"] == "stock"]
    assert venue_stock[-1]["venue"] == venue.pk and venue_stock[-1]["stock"] == {"PIN-0": 2}
    assert all("venue" in m for m in venue_stock)  # the default location's counts did not move
    (bundle,) = [m for m in messages if m["type"] == "bundle"]
    assert bundle["id"] == rule.pk
    assert (bundle["bundle"]["price"], bundle["bundle"]["list_price"]) == ("15.00", "24.00")
    await comm.disconnect()
