"""The sync plane end to end: the edge (this process) relays to a real cloud (a daphne
subprocess on its own database) through a fault proxy (docs/edge.md, "Tests")."""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
import warnings

import pytest
from django.db import transaction

from tests.factories import make_buyer
from tests.nodes.conftest import EDGE, EDGE_KEY, SHOP, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

_keys = itertools.count(1)


def sell(buyer, lines, *, venue=None):
    from apps.orders.services import order_place

    outcome = order_place(
        buyer=buyer,
        lines=lines,
        shop_slug=SHOP,
        idempotency_key=f"edge-buy-{next(_keys):06d}",
        fingerprint="f",
        **({"venue_id": venue.pk} if venue else {}),
    )
    assert outcome.status == 201, outcome.body
    return outcome.order


def sell_some(n: int, buyers) -> list:
    orders = []
    for i in range(n):
        lines = [("TEE", 1 + i % 3)] if i % 2 == 0 else [("CAP", 1), ("TEE", 1)] if i % 4 == 1 else [("CAP", 2)]
        if lines == [("CAP", 1), ("TEE", 1)]:
            lines = [("CAP", 1)]  # one currency per order
        orders.append(sell(buyers[i % len(buyers)], lines))
    return orders


def edge_orders() -> list[tuple]:
    from django.db.models import Sum

    from apps.orders.models import Order

    rows = Order.objects.exclude(status__in=["reserved", "failed", "declined", "expired"]).annotate(
        units=Sum("lines__quantity")
    )
    return sorted((o.pk, o.status, format(o.total, "f"), o.currency, o.units) for o in rows)


def edge_last_seq() -> int:
    from apps.nodes.selectors import outbox_last_seq, outbox_unstamped_count

    return outbox_last_seq() if outbox_unstamped_count() == 0 else -1


def synced(cloud) -> bool:
    """Everything the edge recorded is stamped and acknowledged by the cloud and the edge."""
    from apps.nodes.selectors import relay_state_of
    from creatorcommerce.spine.models import OutboxEvent

    total = OutboxEvent.objects.count()
    state = relay_state_of(EDGE)
    return (
        total > 0
        and edge_last_seq() == total
        and cloud.node()["acked_seq"] == total
        and state is not None
        and state.acked_seq == total
    )


def assert_cloud_equals_edge(cloud):
    from apps.nodes.selectors import edge_totals
    from creatorcommerce.spine.models import OutboxEvent

    assert cloud.orders() == edge_orders()
    node = cloud.node()
    total = OutboxEvent.objects.count()
    assert (node["acked_seq"], node["max_seq"], node["events_held"]) == (total, total, total)
    assert node["totals"] == edge_totals()
    # The cloud's own sums over its mirrored orders agree with the edge's (money per currency).
    cloud_totals = {
        currency: {"orders": n, "units": int(units), "amount": amount}
        for currency, n, units, amount in cloud.sql(
            "SELECT o.currency, count(DISTINCT o.id), sum(l.quantity), "
            "(SELECT sum(total) FROM orders_order x JOIN nodes_nodeorder y ON y.order_id=x.id "
            " WHERE x.currency=o.currency AND x.status='paid')::text "
            "FROM orders_order o JOIN nodes_nodeorder m ON m.order_id = o.id "
            "JOIN orders_orderline l ON l.order_id = o.id WHERE o.status='paid' GROUP BY o.currency"
        )
    }
    assert cloud_totals == edge_totals()
    assert cloud.one("SELECT count(*) FROM nodes_nodeevent") == total
    assert cloud.one("SELECT count(*) FROM (SELECT uuid FROM nodes_nodeevent GROUP BY uuid HAVING count(*) > 1) d") == 0


def test_buys_on_the_edge_reach_the_cloud_exactly_once(edge, proxy, beat):
    proxy.mode = "pass"
    from apps.accounts.models import User
    from apps.orders.services import order_refund

    buyers = [make_buyer(email=f"venue-buyer-{i}@edge.test") for i in range(3)]
    orders = sell_some(20, buyers)
    creator = User.objects.get(email="creator@edge.test")
    order_refund(order=orders[0].__class__.objects.get(pk=orders[0].pk), actor=creator, restock=True, reason="damaged")
    committed = time.monotonic()
    wait_until(lambda: synced(edge), timeout=10, message="the cloud acknowledged every event within 10 s")
    lag = time.monotonic() - committed
    assert_cloud_equals_edge(edge)
    # The buyers were unknown to the cloud: known there now by e-mail.
    emails = {row[0] for row in edge.sql("SELECT email FROM accounts_user WHERE email LIKE 'venue-buyer-%%'")}
    assert emails == {b.email for b in buyers}
    assert (
        edge.one(
            "SELECT status FROM orders_order o JOIN nodes_nodeorder m ON m.order_id=o.id WHERE m.edge_order=%s",
            [orders[0].pk],
        )
        == "refunded"
    )
    print(f"\nhappy path: last commit -> cloud acknowledged in {lag:.2f} s")


@pytest.mark.parametrize("cut", ["refuse", "blackhole"])
def test_a_cut_link_keeps_the_edge_selling_and_the_relay_catches_up(edge, proxy, beat, settings, cut):
    """``refuse``: connections closed at once; ``blackhole``: requests never answered (the
    relay's HTTP timeout ends each attempt)."""
    from apps.nodes.selectors import relay_state_of
    from creatorcommerce.spine.models import OutboxEvent

    if cut == "blackhole":
        settings.SYNC_TIMEOUT_SECONDS = 1.0  # each attempt waits this long for nothing
    proxy.mode = cut

    buyers = [make_buyer(email=f"cut-buyer-{i}@edge.test") for i in range(2)]
    orders = sell_some(12, buyers)
    assert all(o.status == "paid" for o in orders)  # the edge sells on
    wait_until(
        lambda: (relay_state_of(EDGE) or None) and relay_state_of(EDGE).failures >= 3,
        timeout=20,
        message="the relay retried and backs off",
    )
    assert edge.one("SELECT count(*) FROM nodes_nodeevent") == 0
    state = relay_state_of(EDGE)
    assert state.acked_seq == 0 and state.next_attempt_at is not None
    more = sell_some(4, buyers)  # still selling during the outage
    assert all(o.status == "paid" for o in more)
    proxy.mode = "pass"
    restored = time.monotonic()
    wait_until(lambda: synced(edge), timeout=60, message="caught up within 60 s of the link returning")
    catch_up = time.monotonic() - restored
    events = OutboxEvent.objects.count()
    assert_cloud_equals_edge(edge)
    print(f"\ncut link ({cut}): {events} events caught up {catch_up:.2f} s after the link returned")


def test_a_dropped_answer_is_retried_and_changes_nothing(edge, proxy, beat):
    from apps.nodes.selectors import relay_state_of
    from creatorcommerce.spine.models import OutboxEvent

    proxy.mode = "drop_response"
    buyers = [make_buyer(email="drop-buyer@edge.test")]
    sell_some(3, buyers)
    total = OutboxEvent.objects.count()
    wait_until(lambda: edge.node()["acked_seq"] == total, timeout=20, message="the cloud applied the batch")
    wait_until(lambda: relay_state_of(EDGE).failures >= 1, timeout=20, message="the edge never heard back")
    assert relay_state_of(EDGE).acked_seq == 0
    forwarded = proxy.forwarded
    proxy.mode = "pass"
    wait_until(lambda: synced(edge), timeout=30, message="the retry got its answer")
    assert proxy.forwarded > forwarded  # the batch went again ...
    assert_cloud_equals_edge(edge)  # ... and nothing was recorded twice


def _post(cloud, token: str, content_type: str = "application/jose") -> tuple[int, dict]:
    request = urllib.request.Request(
        cloud.base + "/sync/v1/batches", data=token.encode(), method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _stamped(n_orders: int):
    from apps.nodes.services import outbox_stamp
    from creatorcommerce.spine.models import OutboxEvent

    sell_some(n_orders, [make_buyer(email="batch-buyer@edge.test")])
    outbox_stamp()
    return list(OutboxEvent.objects.order_by("seq"))


def test_batches_delivered_twice_and_out_of_order_apply_once(edge, proxy):
    from apps.nodes.relay import batch_token

    # The link stays cut (the proxy refuses): the relay gets nowhere, this test delivers by hand.
    events = _stamped(6)
    half = len(events) // 2
    first, _, _ = batch_token(events[:half])
    second, _, _ = batch_token(events[half:])

    status, answer = _post(edge, second)  # the later batch first: held, not acknowledged
    assert status == 200 and answer["acked_seq"] == 0 and answer["max_seq"] == len(events)
    assert edge.one("SELECT count(*) FROM nodes_nodeevent") == len(events) - half
    status, answer = _post(edge, first)
    assert status == 200 and answer["acked_seq"] == len(events) and answer["recorded"] == half
    before = (edge.orders(), edge.one("SELECT count(*) FROM nodes_nodeevent"))
    for token in (second, first, first):  # replays change nothing
        status, answer = _post(edge, token)
        assert status == 200 and answer["acked_seq"] == len(events) and answer["recorded"] == 0
    assert (edge.orders(), edge.one("SELECT count(*) FROM nodes_nodeevent")) == before
    assert edge.orders() == edge_orders()


def _forged(body: dict, key, kid: str) -> str:
    from joserfc import jws

    return jws.serialize_compact(
        {"alg": "EdDSA", "kid": kid, "typ": "sync-batch+jws"}, json.dumps(body), key, algorithms=["EdDSA"]
    )


def test_forged_unknown_and_malformed_batches_are_refused_and_record_nothing(edge, proxy):
    from joserfc.jwk import OKPKey

    from apps.nodes.relay import batch_token

    events = _stamped(2)
    genuine, _, _ = batch_token(events)
    body = json.loads(__import__("base64").urlsafe_b64decode(genuine.split(".")[1] + "=="))
    stranger = OKPKey.generate_key("Ed25519", parameters={"kid": "stranger-1"})

    status, answer = _post(edge, _forged(body, stranger, EDGE_KEY.kid))  # our kid, another key
    assert (status, answer["code"]) == (401, "invalid_signature")
    status, answer = _post(edge, _forged(body, stranger, "stranger-1"))  # a node nobody registered
    assert (status, answer["code"]) == (401, "unknown_node")
    status, answer = _post(edge, _forged({**body, "node": "other-node"}, EDGE_KEY, EDGE_KEY.kid))
    assert (status, answer["code"]) == (401, "invalid_signature")
    status, answer = _post(edge, "not-a-jws")
    assert (status, answer["code"]) == (400, "invalid_batch")
    status, answer = _post(edge, _forged({**body, "events": "many"}, EDGE_KEY, EDGE_KEY.kid))
    assert (status, answer["code"]) == (400, "invalid_batch")
    status, answer = _post(edge, genuine, content_type="application/json")
    assert (status, answer["code"]) == (415, "unsupported_media_type")
    assert edge.one("SELECT count(*) FROM nodes_nodeevent") == 0
    assert edge.one("SELECT count(*) FROM nodes_nodeorder") == 0
    assert edge.node()["last_sync_at"] is None
    status, answer = _post(edge, genuine)  # and the genuine batch still goes through
    assert status == 200 and answer["acked_seq"] == len(events)


def test_an_edge_receipt_verifies_against_the_cloud_jwks(edge, proxy):
    import jwt
    from joserfc import jws
    from joserfc.jwk import KeySet

    from tests.browser import manage

    order = sell(make_buyer(email="receipt-buyer@edge.test"), [("TEE", 1)])
    token = order.receipt
    with urllib.request.urlopen(edge.base + "/.well-known/jwks.json", timeout=10) as response:
        key_set = json.loads(response.read())
    assert EDGE_KEY.kid in [key["kid"] for key in key_set["keys"]]
    assert all("d" not in key for key in key_set["keys"])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc 1.8: "EdDSA is deprecated" (docs/receipts.md)
        verified = jws.deserialize_compact(token, KeySet.import_key_set(key_set), algorithms=["EdDSA"])
    payload = json.loads(verified.payload)
    assert payload["node"] == EDGE and payload["order"] == order.pk
    key = jwt.PyJWKSet.from_dict(key_set)[EDGE_KEY.kid]
    assert jwt.decode(token, key=key, algorithms=["EdDSA"])["order"] == order.pk
    out = manage(edge.env, "verify_receipt", token)  # exits 0 only if it verifies
    assert EDGE in out and str(order.pk) in out


def _worker(edge_env: dict, name: str):
    import os
    import subprocess
    import sys

    from tests.browser import ROOT

    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "creatorcommerce", "worker", "-P", "solo", "-c", "1", "-Q", "celery",
         "-n", f"{name}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "warning"],
        cwd=ROOT, env={**os.environ, **edge_env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def _kill(proc) -> None:
    import os
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_a_relay_worker_killed_mid_batch_resumes_and_doubles_nothing(edge, proxy, settings):
    """A real Celery worker runs the relay; it is killed (SIGKILL) while its batch has
    reached the cloud and the answer is held; a second worker resends, nothing doubles."""
    import os
    from urllib.parse import urlparse, urlunparse

    from django.db import connection

    from apps.nodes.selectors import relay_state_of
    from apps.nodes.tasks import relay_outbox
    from creatorcommerce.celery import app
    from creatorcommerce.spine.models import OutboxEvent

    parsed = urlparse(os.environ["DATABASE_URL"])
    edge_env = {
        "DATABASE_URL": urlunparse(parsed._replace(path=f"/{connection.settings_dict['NAME']}")),
        "NODE_ROLE": "edge", "NODE_ID": EDGE, "CLOUD_URL": proxy.url, "SYNC_TIMEOUT_SECONDS": "60",
        "SYNC_BACKOFF_MIN_SECONDS": "0.5", "SYNC_BACKOFF_MAX_SECONDS": "4", "SYNC_BATCH_SIZE": "50",
        "EMBEDDED_SCHEDULER": "0", "DEBUG": "1",
    }  # fmt: skip
    app.control.purge()
    app.conf.task_always_eager = False  # the autouse fixture puts it back
    settings.SYNC_BATCH_SIZE = 50
    buyers = [make_buyer(email="killed-buyer@edge.test")]
    sell_some(6, buyers)
    proxy.mode = "hold_response"
    first = _worker(edge_env, "relay1")
    try:
        relay_outbox.apply_async()
        wait_until(lambda: edge.node()["events_held"] > 0, timeout=60, message="the worker's batch reached the cloud")
        held = edge.node()["events_held"]
        assert relay_state_of(EDGE).acked_seq == 0  # the worker still waits for the answer
        _kill(first)
        proxy.mode = "pass"
        second = _worker(edge_env, "relay2")
        try:
            deadline = time.monotonic() + 60
            while not synced(edge):
                assert time.monotonic() < deadline, "the second worker did not catch up"
                relay_outbox.apply_async()
                time.sleep(0.5)
        finally:
            _kill(second)
    finally:
        _kill(first)
    assert edge.node()["events_held"] == OutboxEvent.objects.count() >= held
    assert_cloud_equals_edge(edge)


def test_a_backlog_catches_up_exactly_once(edge, proxy, beat, settings):
    """5,000 events queued during an outage reach the cloud once the link returns; the
    rate is printed (docs/edge.md, "Figures")."""
    from apps.nodes.selectors import relay_state_of
    from creatorcommerce.spine.events import emit_many
    from creatorcommerce.spine.models import OutboxEvent

    settings.SYNC_BATCH_SIZE = 200  # the default
    sell_some(40, [make_buyer(email=f"backlog-{i}@edge.test") for i in range(4)])
    with transaction.atomic():
        emit_many([("address.updated", {"user": i}, ()) for i in range(5000)])
    wait_until(lambda: relay_state_of(EDGE).failures >= 1, timeout=20, message="the relay found the link cut")
    events = OutboxEvent.objects.count()
    cpu_before = edge.cpu_seconds()
    proxy.mode = "pass"
    restored = time.monotonic()
    wait_until(lambda: synced(edge), timeout=60, message="the backlog caught up")
    elapsed = time.monotonic() - restored
    cpu = edge.cpu_seconds() - cpu_before
    first, last = edge.sql("SELECT min(received_at), max(received_at) FROM nodes_nodeevent")[0]
    transfer = (last - first).total_seconds()
    assert_cloud_equals_edge(edge)
    print(
        f"\nbacklog: {events} events caught up {elapsed:.2f} s after the link returned "
        f"(backoff wait included); first to last batch {transfer:.2f} s = {events / max(transfer, 1e-3):.0f} events/s; "
        f"cloud server CPU {cpu * 1e6 / events:.0f} us per event"
    )


def test_after_an_outage_the_relay_goes_on_once_the_cloud_answers_not_when_its_backoff_ends(edge, proxy, settings):
    """A refused link makes the relay back off (here 60 s, to see the difference); once the
    cloud answers ``/healthz`` again the next run relays at once (docs/edge.md, "Relay")."""
    from apps.nodes import relay
    from apps.nodes.selectors import relay_state_of

    settings.SYNC_BACKOFF_MIN_SECONDS = settings.SYNC_BACKOFF_MAX_SECONDS = 60.0
    sell_some(3, [make_buyer(email="probe-buyer@edge.test")])
    wait_until(
        lambda: (relay_state_of(EDGE) or None) and relay_state_of(EDGE).failures >= 1,
        timeout=20,
        message="the relay found the link cut",
    )
    proxy.mode = "pass"
    settings.SYNC_PROBE_SECONDS = 0  # probing off: the backoff is waited out
    assert relay.relay_run()["status"] == "backoff"
    settings.SYNC_PROBE_SECONDS = 0.1
    relay._probed_at = 0.0
    assert relay.relay_run()["status"] == "idle"  # the probe found the cloud: drained now
    assert synced(edge)
    assert_cloud_equals_edge(edge)
