"""What a save in the stream admin writes: never a deal's status, remaining units or version
(the scheduler and the buy path own those), nothing but the closing time of an open deal,
and no deletion that would lose a deal's units. Also: the order page writes nothing.

Forms are posted as a browser would: every input of the change page as rendered (management
forms, hidden ids and ``initial-*`` values included), with the edits a test makes on top.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from apps.catalog.models import Location, StockLevel
from apps.catalog.services import stock_adjust
from apps.orders.models import Order
from apps.streams import admin as streams_admin
from apps.streams.models import FlashDeal, Stream
from apps.streams.services import deal_close, deal_open
from tests.factories import StaffFactory, make_buyer
from tests.helpers import inline_row, page_form
from tests.streams.test_deals import stream_buy

pytestmark = pytest.mark.django_db


def deal_row(data, deal) -> str:
    return inline_row(data, "deals", deal)


def set_time(data, prefix, value):
    data[f"{prefix}_0"], data[f"{prefix}_1"] = value.strftime("%Y-%m-%d"), value.strftime("%H:%M:%S")


def stream_url(stream):
    return f"/admin/streams/stream/{stream.pk}/change/"


def post(client, stream, data):
    return client.post(stream_url(stream), {**data, "_save": "Save"})


def page_errors(response) -> str:
    assert response.status_code == 200, response.status_code
    errors = [str(response.context["adminform"].form.errors)]
    for inline in response.context["inline_admin_formsets"]:
        errors.append(str(inline.formset.non_form_errors()))
        errors += [str(form.errors) for form in inline.formset.forms]
    return " ".join(errors)


def message_texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def units(deal) -> int:
    """The deal's units wherever they are: still in the deal, or back at its location."""
    deal.refresh_from_db()
    return deal.remaining + StockLevel.objects.get(sku=deal.sku, location=deal.location).available


@pytest.fixture
def logged_in(client, creator):
    client.force_login(creator)
    return client


@pytest.fixture
def during_save(monkeypatch):
    """``during_save(fn)``: run ``fn`` inside the admin's POST, after the deal rows were
    loaded and validated and before they are saved (a buy or a tick landing meanwhile)."""

    def install(fn):
        original = FlashDeal.clean

        def clean(self):
            original(self)
            fn()

        monkeypatch.setattr(FlashDeal, "clean", clean)

    return install


# -- an open deal: only its closing time is written --------------------------------------------


def test_units_sold_while_the_page_was_open_are_not_sold_again(logged_in, live_stream, open_deal, deal_sku):
    data = page_form(logged_in, stream_url(live_stream))
    total = units(open_deal)
    assert stream_buy(make_buyer(), deal_sku.code, live_stream.pk, quantity=2).status == 201
    sold = FlashDeal.objects.get(pk=open_deal.pk)
    row = deal_row(data, open_deal)
    later = open_deal.closes_at + timedelta(minutes=30)
    set_time(data, f"{row}-closes_at", later)

    response = post(logged_in, live_stream, data)

    assert response.status_code == 302, page_errors(response)
    deal = FlashDeal.objects.get(pk=open_deal.pk)
    # Moving the end is a change viewers see (deal.changed), so the version moves on by one.
    assert (deal.status, deal.remaining, deal.version) == (FlashDeal.Status.OPEN, 3, sold.version + 1)
    assert deal.closes_at == later.replace(microsecond=0)
    assert units(open_deal) == total - 2  # the two sold units are not back


def test_a_buy_during_the_save_is_kept(logged_in, live_stream, open_deal, deal_sku, during_save):
    data = page_form(logged_in, stream_url(live_stream))
    total = units(open_deal)
    later = open_deal.closes_at + timedelta(minutes=30)
    set_time(data, f"{deal_row(data, open_deal)}-closes_at", later)
    during_save(lambda: stream_buy(make_buyer(), deal_sku.code, live_stream.pk))

    response = post(logged_in, live_stream, data)

    assert response.status_code == 302, page_errors(response)
    deal = FlashDeal.objects.get(pk=open_deal.pk)
    assert deal.status == FlashDeal.Status.OPEN and deal.remaining == 4
    assert deal.closes_at == later.replace(microsecond=0)
    assert units(open_deal) == total - 1
    assert Order.objects.filter(lines__unit_source=f"deal:{deal.pk}").count() == 1


def test_a_tick_closing_the_deal_during_the_save_stays_closed(logged_in, live_stream, open_deal, during_save):
    data = page_form(logged_in, stream_url(live_stream))
    total = units(open_deal)
    row = deal_row(data, open_deal)
    set_time(data, f"{row}-closes_at", open_deal.closes_at + timedelta(hours=1))
    during_save(lambda: deal_close(deal=open_deal))

    response = post(logged_in, live_stream, data)

    assert response.status_code == 302
    deal = FlashDeal.objects.get(pk=open_deal.pk)
    assert (deal.status, deal.remaining) == (FlashDeal.Status.CLOSED, 0)
    assert deal.closes_at == open_deal.closes_at  # not moved: the deal is closed
    assert units(open_deal) == total  # every unit is back at the location, once
    assert any("closed now; not saved: closes_at" in text for text in message_texts(response))


@pytest.mark.parametrize("field", ["price", "quantity", "location", "opens_at", "per_buyer_limit"])
def test_an_open_deal_refuses_changes_other_than_its_closing_time(logged_in, live_stream, open_deal, field):
    data = page_form(logged_in, stream_url(live_stream))
    before = FlashDeal.objects.filter(pk=open_deal.pk).values().get()
    row = deal_row(data, open_deal)
    if field == "location":
        depot = Location.objects.create(shop=live_stream.shop, name="Depot")
        stock_adjust(sku=open_deal.sku, location=depot, set_to=50)
        data[f"{row}-location"] = str(depot.pk)
    elif field == "opens_at":
        set_time(data, f"{row}-opens_at", open_deal.opens_at - timedelta(minutes=10))
    else:
        data[f"{row}-{field}"] = {"price": "1.00", "quantity": "50", "per_buyer_limit": "9"}[field]

    response = post(logged_in, live_stream, data)

    assert "An open deal can only get a new closing time" in page_errors(response)
    assert FlashDeal.objects.filter(pk=open_deal.pk).values().get() == before


def test_a_closed_deal_cannot_be_changed(logged_in, live_stream, open_deal):
    deal_close(deal=open_deal)
    data = page_form(logged_in, stream_url(live_stream))
    before = FlashDeal.objects.filter(pk=open_deal.pk).values().get()
    set_time(data, f"{deal_row(data, open_deal)}-closes_at", timezone.now() + timedelta(days=1))

    response = post(logged_in, live_stream, data)

    assert "a closed deal cannot be changed" in page_errors(response)
    assert FlashDeal.objects.filter(pk=open_deal.pk).values().get() == before


def test_saving_the_page_unchanged_writes_no_deal(logged_in, live_stream, open_deal, deal_sku):
    data = page_form(logged_in, stream_url(live_stream))
    assert stream_buy(make_buyer(), deal_sku.code, live_stream.pk).status == 201
    before = FlashDeal.objects.filter(pk=open_deal.pk).values().get()
    assert post(logged_in, live_stream, data).status_code == 302
    assert FlashDeal.objects.filter(pk=open_deal.pk).values().get() == before


# -- a scheduled deal is edited as before, without its status, remaining or version ------------


def test_a_scheduled_deal_is_edited_without_touching_its_counters(
    logged_in, scheduled_stream, deal_sku, make_deal, during_save
):
    deal = make_deal(scheduled_stream, deal_sku, opens_at=timezone.now() + timedelta(hours=2))
    data = page_form(logged_in, stream_url(scheduled_stream))
    row = deal_row(data, deal)
    data[f"{row}-price"], data[f"{row}-quantity"] = "9.50", "7"
    # Another writer bumps the version while the save runs: it must not be written back.
    during_save(lambda: FlashDeal.objects.filter(pk=deal.pk).update(version=41))

    response = post(logged_in, scheduled_stream, data)

    assert response.status_code == 302, page_errors(response)
    deal.refresh_from_db()
    assert (str(deal.price), deal.quantity) == ("9.50", 7)
    assert (deal.status, deal.remaining, deal.version) == (FlashDeal.Status.SCHEDULED, 0, 41)


def test_a_deal_opened_during_the_save_keeps_its_price(logged_in, scheduled_stream, deal_sku, make_deal, during_save):
    deal = make_deal(scheduled_stream, deal_sku, opens_at=timezone.now() - timedelta(minutes=1))
    Stream.objects.filter(pk=scheduled_stream.pk).update(status=Stream.Status.LIVE)
    data = page_form(logged_in, stream_url(scheduled_stream))
    data[f"{deal_row(data, deal)}-price"] = "1.00"
    during_save(lambda: deal_open(deal=deal))

    response = post(logged_in, scheduled_stream, data)

    assert response.status_code == 302
    deal.refresh_from_db()
    assert deal.status == FlashDeal.Status.OPEN and deal.remaining == 5 and str(deal.price) == "12.00"
    assert any("open now; not saved: price" in text for text in message_texts(response))


# -- deleting deals ------------------------------------------------------------------------------


def test_an_open_deal_cannot_be_deleted(logged_in, live_stream, open_deal):
    data = page_form(logged_in, stream_url(live_stream))
    total = units(open_deal)
    data[f"{deal_row(data, open_deal)}-DELETE"] = "on"

    response = post(logged_in, live_stream, data)

    assert "Close the deal first" in page_errors(response)
    assert FlashDeal.objects.filter(pk=open_deal.pk, status=FlashDeal.Status.OPEN).exists()
    assert units(open_deal) == total


def test_a_closed_deal_with_orders_cannot_be_deleted(logged_in, live_stream, open_deal, deal_sku):
    assert stream_buy(make_buyer(), deal_sku.code, live_stream.pk).status == 201
    deal_close(deal=open_deal)
    data = page_form(logged_in, stream_url(live_stream))
    data[f"{deal_row(data, open_deal)}-DELETE"] = "on"

    response = post(logged_in, live_stream, data)

    assert "has orders, so it cannot be deleted" in page_errors(response)  # a form error, not a 500
    assert FlashDeal.objects.filter(pk=open_deal.pk).exists()


def test_closed_and_scheduled_deals_without_orders_can_be_deleted(logged_in, live_stream, open_deal, make_deal):
    deal_close(deal=open_deal)
    later = make_deal(live_stream, open_deal.sku, opens_at=timezone.now() + timedelta(hours=3))
    data = page_form(logged_in, stream_url(live_stream))
    data[f"{deal_row(data, open_deal)}-DELETE"] = "on"
    data[f"{deal_row(data, later)}-DELETE"] = "on"

    response = post(logged_in, live_stream, data)

    assert response.status_code == 302, page_errors(response)
    assert not FlashDeal.objects.filter(stream=live_stream).exists()


def test_a_deal_opened_before_its_deletion_is_saved_stays(
    logged_in, scheduled_stream, deal_sku, make_deal, monkeypatch
):
    deal = make_deal(scheduled_stream, deal_sku, opens_at=timezone.now() - timedelta(minutes=1))
    Stream.objects.filter(pk=scheduled_stream.pk).update(status=Stream.Status.LIVE)
    data = page_form(logged_in, stream_url(scheduled_stream))
    data[f"{deal_row(data, deal)}-DELETE"] = "on"
    checked = streams_admin.FlashDealInlineFormSet.clean

    def clean_then_tick(formset):
        checked(formset)
        deal_open(deal=deal)

    monkeypatch.setattr(streams_admin.FlashDealInlineFormSet, "clean", clean_then_tick)

    response = post(logged_in, scheduled_stream, data)

    assert response.status_code == 302
    assert FlashDeal.objects.get(pk=deal.pk).status == FlashDeal.Status.OPEN
    assert any("Close the deal first" in text for text in message_texts(response))


def test_a_stream_with_an_open_deal_cannot_be_deleted(logged_in, live_stream, open_deal):
    page = logged_in.get(f"/admin/streams/stream/{live_stream.pk}/delete/")
    assert page.status_code == 200 and b"close it first" in page.content
    logged_in.post(f"/admin/streams/stream/{live_stream.pk}/delete/", {"post": "yes"})
    logged_in.post(
        "/admin/streams/stream/",
        {"action": "delete_selected", "_selected_action": [str(live_stream.pk)], "post": "yes"},
    )
    assert FlashDeal.objects.filter(pk=open_deal.pk, status=FlashDeal.Status.OPEN).exists()


# -- the order page is read-only ---------------------------------------------------------------


def test_the_order_page_shows_the_order_and_writes_nothing(client, live_stream, deal_sku, scheduled_stream):
    assert stream_buy(make_buyer(), deal_sku.code, live_stream.pk).status == 201
    order = Order.objects.get()
    client.force_login(StaffFactory())
    url = f"/admin/orders/order/{order.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert not page.context["adminform"].form.fields  # every field is read-only
    before = Order.objects.filter(pk=order.pk).values().get()
    Order.objects.filter(pk=order.pk).update(status=Order.Status.REFUNDED)  # a webhook, meanwhile

    response = client.post(url, {"stream": str(scheduled_stream.pk), "_save": "Save"})

    assert response.status_code == 403
    after = Order.objects.filter(pk=order.pk).values().get()
    assert after == {**before, "status": Order.Status.REFUNDED}
