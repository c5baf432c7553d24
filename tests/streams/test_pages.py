"""The HTML pages: the storefront lists streams, anyone can watch a stream, and only its
creator (or staff) opens the control room."""

from __future__ import annotations

import json

import pytest
from django.utils.html import escape

from apps.streams.models import Stream

pytestmark = pytest.mark.django_db


def test_home_lists_live_and_upcoming_streams(client, make_stream, creator):
    live = make_stream(creator.shop, title="Sneaker drop", status=Stream.Status.LIVE)
    upcoming = make_stream(creator.shop, title="Poster signing")
    make_stream(creator.shop, title="Old show", status=Stream.Status.ENDED)
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    live_at, upcoming_at = html.index('id="live-h"'), html.index('id="upcoming-h"')
    assert live_at < html.index("Sneaker drop") < upcoming_at < html.index("Poster signing")
    assert f'href="/streams/{live.pk}/"' in html
    assert f'href="/streams/{upcoming.pk}/"' in html
    assert "Old show" not in html


def test_home_without_streams_says_so(client, db):
    html = client.get("/").content.decode()
    assert "Nothing live right now" in html and "No drops scheduled yet" in html


def test_stream_page_for_anyone_sets_csrf_cookie_and_embeds_the_stream(client, live_stream):
    response = client.get(f"/streams/{live_stream.pk}/")
    assert response.status_code == 200
    assert "csrftoken" in response.cookies  # the page's script POSTs for a viewer token
    html = response.content.decode()
    assert escape(live_stream.title) in html
    assert "js/stream.js" in html
    assert 'data-authenticated="0"' in html
    assert "/accounts/login/?next=/streams/" in html
    start = html.index('<script id="stream-initial" type="application/json">') + len(
        '<script id="stream-initial" type="application/json">'
    )
    initial = json.loads(html[start : html.index("</script>", start)])
    assert initial["id"] == live_stream.pk and initial["status"] == "live"
    assert [p["sku"] for p in initial["pins"]] == [p.sku.code for p in live_stream.pins.all()]
    assert initial["pins"][0]["deal"] is not None


def test_stream_page_signed_in_viewer(client, live_stream, viewer):
    client.force_login(viewer)
    html = client.get(f"/streams/{live_stream.pk}/").content.decode()
    assert 'data-authenticated="1"' in html
    assert "Control room" not in html


def test_unknown_stream_is_404(client, db):
    assert client.get("/streams/999999/").status_code == 404


def test_control_room_for_the_owner(client, live_stream, creator):
    client.force_login(creator)
    response = client.get(f"/streams/{live_stream.pk}/control/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "js/control.js" in html and "csrftoken" in response.cookies
    for sku in creator.shop.skus.all():
        assert sku.code in html  # the shop's SKUs, for pinning
    assert 'id="control-deals"' in html
    # The owner also gets a link to it from the stream page.
    assert "Control room" in client.get(f"/streams/{live_stream.pk}/").content.decode()


def test_control_room_for_staff(client, live_stream, staff_user):
    client.force_login(staff_user)
    assert client.get(f"/streams/{live_stream.pk}/control/").status_code == 200


def test_control_room_refuses_another_creator(client, live_stream, other_creator):
    client.force_login(other_creator)
    response = client.get(f"/streams/{live_stream.pk}/control/")
    assert response.status_code == 403
    assert "not allowed" in response.content.decode()


def test_control_room_refuses_a_viewer(client, live_stream, viewer):
    client.force_login(viewer)
    assert client.get(f"/streams/{live_stream.pk}/control/").status_code == 403


def test_control_room_sends_anonymous_to_login(client, live_stream):
    response = client.get(f"/streams/{live_stream.pk}/control/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    assert f"/streams/{live_stream.pk}/control/" in response["Location"]


def test_control_room_lists_the_sales_made_before_it_opened(
    client, live_stream, creator, buyer, plain_sku, django_capture_on_commit_callbacks
):
    """It said "No sales yet" next to Orders 1: the page only listed sales that arrived
    over its socket."""
    from apps.orders.models import Order
    from tests.streams.test_deals import stream_buy

    with django_capture_on_commit_callbacks(execute=True):
        stream_buy(buyer, plain_sku.code, live_stream.pk, quantity=2)
    order = Order.objects.get(stream=live_stream)
    assert order.status == Order.Status.PAID
    client.force_login(creator)
    html = client.get(f"/streams/{live_stream.pk}/control/").content.decode()
    assert "No sales yet" not in html
    sales = json.loads(html.split('id="control-sales" type="application/json">')[1].split("</script>")[0])
    assert sales["orders"] == 1 and sales["currency"] == creator.shop.currency
    assert sales["recent"] == [
        {
            "order": order.pk,
            "total": "10.00",
            "currency": order.currency,
            "lines": [{"sku": plain_sku.code, "quantity": 2}],
            "at": order.created_at.isoformat().replace("+00:00", "Z"),
        }
    ]


def test_control_room_without_sales_says_so(client, live_stream, creator):
    client.force_login(creator)
    html = client.get(f"/streams/{live_stream.pk}/control/").content.decode()
    assert "No sales yet" in html
