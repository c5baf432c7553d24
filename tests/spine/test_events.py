"""The event spine: outbox row in the caller's transaction, delivery only after commit."""

from __future__ import annotations

import asyncio
import decimal
import threading
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import close_old_connections, connection, transaction

from creatorcommerce.spine.events import EventError, emit
from creatorcommerce.spine.models import HandlerRun, OutboxEvent
from creatorcommerce.spine.registry import handler, unregister
from creatorcommerce.spine.tasks import apply_handler, redeliver_pending

GROUP = "test.spine"
pytestmark = pytest.mark.usefixtures("unchecked_events")  # throwaway event types
applied: list[str] = []


@pytest.fixture
def counting_handler():
    """A handler that records each application, on `test.pinged`."""
    applied.clear()

    @handler("test.pinged", name="tests.spine.count")
    def count(event):
        applied.append(str(event.uuid))

    yield applied
    unregister("tests.spine.count")


@pytest.fixture
def failing_handler():
    @handler("test.failed", name="tests.spine.fail")
    def fail(event):
        HandlerRun.objects.create(event=event, handler="tests.spine.side-effect")
        raise RuntimeError("boom")

    yield
    unregister("tests.spine.fail")


def _emit_and_commit(payload=None, fail=False):
    with transaction.atomic():
        event = emit("test.pinged", payload or {"n": 1}, groups=[GROUP])
        if fail:
            raise RuntimeError("rollback")
    return event


async def _drain(layer, channel, *, expect=0, wait=0.3, patience=10.0):
    """What reaches ``channel``: up to ``patience`` seconds for each of the ``expect`` messages
    the test knows are coming (a loaded machine delays them), then ``wait`` seconds for any
    that should not come."""
    got = []
    while True:
        try:
            timeout = patience if len(got) < expect else wait
            got.append(await asyncio.wait_for(layer.receive(channel), timeout))
        except TimeoutError:
            return got


async def _listen():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    return layer, channel


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_committed_event_is_sent_once_and_handled_once(counting_handler, close_db_after):
    layer, channel = await _listen()
    event = await sync_to_async(_emit_and_commit)({"n": 7})

    messages = await _drain(layer, channel, expect=1)
    assert len(messages) == 1
    msg = messages[0]
    assert msg["type"] == "test.pinged"
    assert msg["event"] == str(event.uuid)
    assert msg["payload"] == {"n": 7}
    assert counting_handler == [str(event.uuid)]
    assert await OutboxEvent.objects.filter(uuid=event.uuid).acount() == 1


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_rolled_back_transaction_sends_and_enqueues_nothing(counting_handler, close_db_after):
    layer, channel = await _listen()
    with pytest.raises(RuntimeError, match="rollback"):
        await sync_to_async(_emit_and_commit)(fail=True)

    assert await _drain(layer, channel) == []
    assert counting_handler == []
    assert await OutboxEvent.objects.acount() == 0


@pytest.mark.django_db(transaction=True)
def test_handler_delivered_twice_applies_once(counting_handler):
    event = _emit_and_commit()
    assert counting_handler == [str(event.uuid)]  # eager delivery on commit

    assert apply_handler(event.pk, "tests.spine.count") == "duplicate"
    assert apply_handler(event.pk, "tests.spine.count") == "duplicate"
    assert counting_handler == [str(event.uuid)]
    assert HandlerRun.objects.filter(event=event, handler="tests.spine.count").count() == 1


@pytest.mark.django_db(transaction=True)
def test_failing_handler_leaves_no_trace_and_can_be_retried(failing_handler):
    with transaction.atomic():
        event = emit("test.failed", {})
    # The eager run raised: neither its side effect nor its run record stayed.
    assert not HandlerRun.objects.filter(event=event).exists()
    with pytest.raises(RuntimeError):
        apply_handler(event.pk, "tests.spine.fail")
    assert not HandlerRun.objects.filter(event=event).exists()


@pytest.mark.django_db(transaction=True)
def test_one_batch_message_applies_each_pair_once_and_a_failure_stops_none(counting_handler, failing_handler):
    from creatorcommerce.spine.tasks import run_handlers

    with transaction.atomic():  # recorded as if the broker had been down: nothing ran yet
        pinged = [OutboxEvent.objects.create(type="test.pinged", payload={"n": n}, node="n") for n in range(3)]
        failed = OutboxEvent.objects.create(type="test.failed", payload={}, node="n")
    pairs = [(pinged[0].pk, "tests.spine.count"), (failed.pk, "tests.spine.fail")]
    pairs += [(event.pk, "tests.spine.count") for event in pinged[1:]] + [(pinged[0].pk, "tests.spine.count")]

    assert run_handlers(pairs) == {"applied": 3, "failed": 1, "duplicate": 1}  # the task, run here
    assert sorted(counting_handler) == sorted(str(event.uuid) for event in pinged)
    assert HandlerRun.objects.filter(handler="tests.spine.count").count() == 3
    # the failed one left nothing behind (redeliver_pending will find it)
    assert not HandlerRun.objects.filter(event=failed).exists()


@pytest.mark.django_db(transaction=True)
def test_redeliver_pending_runs_handlers_that_never_ran(counting_handler):
    with transaction.atomic():
        event = OutboxEvent.objects.create(type="test.pinged", payload={}, node="n")  # as if the broker was down
    OutboxEvent.objects.filter(pk=event.pk).update(created_at=event.created_at - timedelta(minutes=5))

    assert redeliver_pending() == 1
    assert counting_handler == [str(event.uuid)]
    assert redeliver_pending() == 0


@pytest.mark.django_db
def test_unserializable_payload_fails_at_the_call():
    with transaction.atomic(), pytest.raises(EventError, match="not JSON-serializable"):
        emit("test.pinged", {"lock": threading.Lock()})
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db
def test_payload_is_stored_as_plain_json():
    with transaction.atomic():
        event = emit("test.pinged", {"price": decimal.Decimal("9.90")})
    event.refresh_from_db()
    assert event.payload == {"price": "9.90"}


@pytest.mark.django_db
@pytest.mark.parametrize(("typed", "stored"), [("1E+1", "10"), ("1.5E+2", "150"), ("-2.50", "-2.50"), ("1E-2", "0.01")])
def test_a_decimal_in_exponent_notation_is_stored_in_plain_digits(typed, stored):
    """A price typed as ``1e1`` is the Decimal ``1E+1``; events carry digits (docs/events.md)."""
    with transaction.atomic():
        event = emit("test.pinged", {"price": decimal.Decimal(typed)})
    event.refresh_from_db()
    assert event.payload == {"price": stored}


@pytest.mark.django_db(transaction=True)
def test_emit_outside_a_transaction_is_refused():
    with pytest.raises(EventError, match=r"inside transaction\.atomic"):
        emit("test.pinged", {})
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["Order.Placed", "order", "order.placed.twice", "order placed"])
def test_event_type_must_be_noun_dot_past_verb(bad):
    with transaction.atomic(), pytest.raises(EventError):
        emit(bad, {})


@pytest.mark.django_db
def test_group_names_are_validated():
    with transaction.atomic(), pytest.raises(EventError, match="group name"):
        emit("test.pinged", {}, groups=["stream 1"])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_deliveries_apply_once_postgres(counting_handler):
    """Two workers handed the same (event, handler) at once: the unique pair lets one win."""
    assert connection.vendor == "postgresql"
    with transaction.atomic():
        event = OutboxEvent.objects.create(type="test.pinged", payload={}, node="n")
    results = []
    barrier = threading.Barrier(8)

    def worker():
        try:
            barrier.wait()
            results.append(apply_handler(event.pk, "tests.spine.count"))
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["applied"] + ["duplicate"] * 7
    assert counting_handler == [str(event.uuid)]


def _touch(payment_reference: str, order_id: int):
    return (
        "UPDATE orders_order SET payment_reference = %s WHERE id = %s AND status = 'reserved' RETURNING id",
        [payment_reference, order_id],
    )


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_emit_many_when_records_and_delivers_only_if_the_statement_matched(counting_handler, close_db_after):
    """The statement and the outbox rows are one unit, on PostgreSQL (one statement) and
    SQLite (one transaction); delivered after commit, and nothing when nothing matched."""
    from apps.orders.models import Order
    from creatorcommerce.spine.events import emit_many_when
    from tests.factories import make_buyer, make_sku

    def reserved_order():
        sku = make_sku()
        return Order.objects.create(
            buyer=make_buyer(), shop_id=sku.shop_id, total=1, currency="EUR", idempotency_key="k-when-1"
        )

    order = await sync_to_async(reserved_order)()
    layer, channel = await _listen()
    events = [("test.pinged", {"n": 1}, [GROUP]), ("test.pinged", {"n": 2}, [GROUP])]
    recorded = await sync_to_async(emit_many_when)(*_touch("ref-1", order.pk), events)
    assert [e.payload for e in recorded] == [{"n": 1}, {"n": 2}] and all(e.pk for e in recorded)
    messages = await _drain(layer, channel, expect=2)
    assert [m["payload"] for m in messages] == [{"n": 1}, {"n": 2}]
    assert sorted(counting_handler) == sorted(str(e.uuid) for e in recorded)
    await order.arefresh_from_db()
    assert order.payment_reference == "ref-1"

    await Order.objects.filter(pk=order.pk).aupdate(status="paid")
    assert await sync_to_async(emit_many_when)(*_touch("ref-2", order.pk), events) is None
    assert await _drain(layer, channel) == []
    assert await OutboxEvent.objects.filter(type="test.pinged").acount() == 2


@pytest.mark.django_db(transaction=True)
def test_emit_many_when_inside_a_transaction_rolls_back_with_it(counting_handler):
    from apps.orders.models import Order
    from creatorcommerce.spine.events import emit_many_when
    from tests.factories import make_buyer, make_sku

    sku = make_sku()
    order = Order.objects.create(
        buyer=make_buyer(), shop_id=sku.shop_id, total=1, currency="EUR", idempotency_key="k-when-2"
    )
    with pytest.raises(RuntimeError, match="rollback"), transaction.atomic():
        assert emit_many_when(*_touch("ref-3", order.pk), [("test.pinged", {"n": 3}, [GROUP])]) is not None
        raise RuntimeError("rollback")
    order.refresh_from_db()
    assert order.payment_reference == "" and counting_handler == []
    assert not OutboxEvent.objects.filter(type="test.pinged").exists()
    with pytest.raises(EventError):
        emit_many_when(*_touch("ref-4", order.pk), [("Bad Type", {}, [])])
    order.refresh_from_db()
    assert order.payment_reference == ""
