"""A badge won during a stream reaches its viewers' sockets as an ``interaction`` of kind
``badge`` (name and icon, and the viewer's chosen display name only), on the in-memory layer
and on both channels-redis layers with the real Redis; a pending award does not."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from apps.loyalty.awards import award_grant
from apps.loyalty.badges import badge_save
from apps.loyalty.models import Award
from tests.factories import StaffFactory, make_buyer
from tests.streams.sockets import collect, open_viewer, receive_until

from .conftest import buy

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


async def test_a_badge_won_in_the_stream_pops_for_its_viewers(layer, stream_setup, close_db_after):
    stream, shop = stream_setup["stream"], stream_setup["shop"]
    await sync_to_async(badge_save)(shop=shop, name="Early supporter", icon="🚀", rule="first_buyers", count=10)
    comm, _ = await open_viewer(stream)
    buyer = await sync_to_async(make_buyer)(email="ada@example.test", display_name="Ada")
    await sync_to_async(buy)(buyer, sku="PIN-0", stream=stream)
    messages = await receive_until(comm, lambda got: any(m.get("kind") == "badge" for m in got))
    badges = [m for m in messages if m.get("kind") == "badge"]
    assert badges == [
        {"type": "interaction", "kind": "badge", "badge": {"name": "Early supporter", "icon": "🚀"}, "name": "Ada"}
    ]
    assert "ada@example.test" not in str(messages) and str(buyer.pk) not in str(badges)
    await comm.disconnect()


async def test_a_pending_award_pops_only_once_approved(layer, stream_setup, close_db_after):
    stream, shop = stream_setup["stream"], stream_setup["shop"]
    await sync_to_async(badge_save)(
        shop=shop, name="Superfan", icon="💜", rule="first_buyers", count=10, needs_review=True
    )
    comm, _ = await open_viewer(stream)
    buyer = await sync_to_async(make_buyer)(display_name="Bo")
    await sync_to_async(buy)(buyer, sku="PIN-0", stream=stream)
    # The purchase itself arrives (its award was made before buy() returned); no badge.
    got = await receive_until(comm, lambda got: any(m.get("kind") == "purchase" for m in got))
    got += await collect(comm, 0.3)
    assert not [m for m in got if m.get("kind") == "badge"]
    award = await sync_to_async(Award.objects.get)(status="pending")
    staff = await sync_to_async(StaffFactory)()
    await sync_to_async(award_grant)(award=award, actor=staff)
    messages = await receive_until(comm, lambda got: any(m.get("kind") == "badge" for m in got))
    assert [m for m in messages if m.get("kind") == "badge"] == [
        {"type": "interaction", "kind": "badge", "badge": {"name": "Superfan", "icon": "💜"}, "name": "Bo"}
    ]
    await comm.disconnect()
