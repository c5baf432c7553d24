"""The cloud's ingest and the edge's sequence, in one process on PostgreSQL (docs/edge.md)."""

from __future__ import annotations

import base64
import io
import json
import threading
import uuid

import pytest
from django.core.management import call_command
from django.db import connections, transaction
from django.utils import timezone
from joserfc.jwk import OKPKey

from tests.nodes.conftest import SHOP, seed_catalog

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NODE = "edge-x"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(body: dict, key: OKPKey) -> str:
    header = _b64(json.dumps({"alg": "EdDSA", "kid": key.kid, "typ": "sync-batch+jws"}).encode())
    payload = _b64(json.dumps(body).encode())
    signature = key.get_op_key("sign").sign(f"{header}.{payload}".encode())
    return f"{header}.{payload}.{_b64(signature)}"


@pytest.fixture
def node_key():
    from apps.nodes.services import node_register

    seed_catalog()
    key = OKPKey.generate_key("Ed25519", parameters={"kid": "edge-x-key"})
    node_register(node_id=NODE, public_jwk=key.as_dict(private=False))
    return key


def order_event(seq: int, edge_order: int, *, status="paid", quantity=2, event_type="order.placed") -> dict:
    now = timezone.now().isoformat()
    document = {
        "id": edge_order, "shop": SHOP, "buyer": f"b{edge_order}@edge.test", "status": status,
        "payment_status": "captured", "total": f"{10 * quantity}.00", "currency": "USD", "created_at": now,
        "paid_at": now, "refunded_at": None, "fulfilment": "delivery", "pickup_location": None,
        "shipping_fee": "0.00", "shipping_adjustments": [], "shipping": {}, "payment_reference": "auth_1",
        "capture_reference": "", "refund_reference": "", "receipt": "",
        "lines": [{"sku": "TEE", "title": "Tee", "quantity": quantity, "unit_price": "10.00", "adjustments": [],
                   "total": f"{10 * quantity}.00", "location": "Main warehouse"}],
    }  # fmt: skip
    return {
        "seq": seq, "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{edge_order}/{seq}")), "type": event_type,
        "payload": {"order": edge_order}, "created_at": now, "refs": {"order": document},
    }  # fmt: skip


def batch(events: list[dict]) -> dict:
    return {"node": NODE, "from_seq": events[0]["seq"], "to_seq": events[-1]["seq"], "events": events, "totals": {}}


def test_two_concurrent_deliveries_of_one_batch_apply_once(node_key):
    from apps.nodes.models import NodeEvent, NodeOrder
    from apps.nodes.services import batch_ingest
    from apps.orders.models import Order

    token = sign(batch([order_event(seq, 100 + seq) for seq in range(1, 21)]), node_key)
    start, answers = threading.Barrier(2), []

    def deliver():
        try:
            start.wait()
            answers.append(batch_ingest(token=token))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a["recorded"] for a in answers) == [0, 20]
    assert [a["acked_seq"] for a in answers] == [20, 20]
    assert NodeEvent.objects.count() == 20 and NodeOrder.objects.count() == 20
    assert Order.objects.filter(origin__node__node_id=NODE).count() == 20


def test_out_of_order_batches_leave_a_named_gap_until_it_is_filled(node_key):
    from apps.nodes.models import Node
    from apps.nodes.selectors import cloud_totals, node_gaps
    from apps.nodes.services import batch_ingest
    from apps.orders.models import Order

    assert batch_ingest(token=sign(batch([order_event(1, 1), order_event(2, 2)]), node_key))["acked_seq"] == 2
    answer = batch_ingest(token=sign(batch([order_event(5, 5), order_event(6, 1, status="refunded")]), node_key))
    node = Node.objects.get(node_id=NODE)
    assert (answer["acked_seq"], answer["max_seq"]) == (2, 6)
    assert node_gaps(node) == [(3, 4)]
    # A late, older document of order 1 (seq 4) does not undo the refund seq 6 applied.
    batch_ingest(token=sign(batch([order_event(3, 3), order_event(4, 1, status="paid")]), node_key))
    node.refresh_from_db()
    assert (node.acked_seq, node.max_seq, node_gaps(node)) == (6, 6, [])
    assert Order.objects.get(origin__edge_order=1).status == "refunded"
    assert cloud_totals(node) == {"USD": {"orders": 3, "units": 6, "amount": "60.00"}}


def test_outbox_stamping_never_skips_a_late_commit():
    from apps.nodes.selectors import outbox_after
    from apps.nodes.services import outbox_stamp
    from creatorcommerce.spine.events import emit

    inserted, release, done = threading.Event(), threading.Event(), []

    def slow():
        try:
            with transaction.atomic():
                done.append(emit("address.updated", {"user": 1}))
                inserted.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow)
    thread.start()
    assert inserted.wait(10)
    with transaction.atomic():
        later = emit("address.updated", {"user": 2})
    assert outbox_stamp() == 1  # only the committed one
    assert [e.pk for e in outbox_after(seq=0, limit=10)] == [later.pk]
    release.set()
    thread.join()
    early = done[0]
    assert early.pk < later.pk  # took its id first, committed last
    assert outbox_stamp() == 1
    assert [(e.pk, e.seq) for e in outbox_after(seq=1, limit=10)] == [(early.pk, 2)]


def test_node_key_and_node_add(settings, client):
    from apps.nodes.models import Node
    from creatorcommerce.signing.models import SigningKey

    out = io.StringIO()
    call_command("node_key", stdout=out)
    jwk = json.loads(out.getvalue())
    assert set(jwk) == {"kty", "crv", "x", "kid", "use", "alg"}  # the public half only

    edge = OKPKey.generate_key("Ed25519", parameters={"kid": "venue-7-key"}).as_dict(private=False)
    path = settings.BASE_DIR / "test-artifacts" / "venue-7.jwk"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(edge))
    call_command("node_add", "venue-7", str(path), stdout=io.StringIO())
    call_command("node_add", "venue-7", str(path), stdout=io.StringIO())  # idempotent
    assert Node.objects.filter(node_id="venue-7").count() == 1
    assert SigningKey.objects.get(kid="venue-7-key").private_jwk == {}
    kids = [key["kid"] for key in client.get("/.well-known/jwks.json").json()["keys"]]
    assert kids == [jwk["kid"], "venue-7-key"]  # this node's key first, then the edge's
    path.unlink()


def stock_event(seq: int, available: int, *, location="Pop-up", kind="venue") -> dict:
    payload = {"sku": "TEE", "sku_id": 999, "shop": 999, "level": 999, "available": available, "version": seq}
    return {
        "seq": seq, "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"stock/{seq}")), "type": "stock.changed",
        "payload": payload, "created_at": timezone.now().isoformat(),
        "refs": {"stock": {"shop": SHOP, "sku": "TEE", "location": location, "kind": kind}},
    }  # fmt: skip


def test_venue_stock_is_mirrored_read_only_and_the_cloud_cannot_sell_it(node_key):
    from apps.catalog.models import StockLevel
    from apps.nodes.models import NodeEvent, NodeStock
    from apps.nodes.services import batch_ingest

    venue = StockLevel.objects.get(sku__code="TEE", location__name="Pop-up")
    assert venue.available == 30
    batch_ingest(token=sign(batch([stock_event(1, 27), stock_event(2, 25)]), node_key))
    batch_ingest(token=sign(batch([stock_event(1, 27)]), node_key))  # a replay: nothing changes
    mirror = NodeStock.objects.get(node__node_id=NODE, sku="TEE", location="Pop-up")
    assert (mirror.available, mirror.seq, mirror.stock_level_id) == (25, 2, venue.pk)
    venue.refresh_from_db()
    assert venue.available == 0  # the edge owns these units: no cloud buy takes them
    assert NodeEvent.objects.filter(outcome="applied").count() == 2


def test_names_the_cloud_does_not_know_are_recorded_unresolved_and_do_not_stall_sync(node_key):
    from apps.nodes.models import NodeEvent
    from apps.nodes.services import batch_ingest

    unknown = order_event(1, 1)
    unknown["refs"]["order"]["lines"][0]["sku"] = "NOT-HERE"
    refused = order_event(3, 3)
    refused["refs"]["order"]["total"] = "-5.00"  # the orders table's check constraint says no
    answer = batch_ingest(token=sign(batch([unknown, order_event(2, 2), refused]), node_key))
    assert answer["acked_seq"] == 3
    outcomes = dict(NodeEvent.objects.values_list("seq", "outcome"))
    assert outcomes == {1: "unresolved", 2: "applied", 3: "unresolved"}
    assert "NOT-HERE" in NodeEvent.objects.get(seq=1).detail


def test_a_deactivated_node_is_refused_and_nothing_recorded(node_key):
    from apps.nodes.exceptions import SyncUnauthorized
    from apps.nodes.models import Node, NodeEvent
    from apps.nodes.services import batch_ingest

    Node.objects.filter(node_id=NODE).update(is_active=False)
    with pytest.raises(SyncUnauthorized) as refused:
        batch_ingest(token=sign(batch([order_event(1, 1)]), node_key))
    assert refused.value.code == "unknown_node"
    assert NodeEvent.objects.count() == 0


def test_staff_register_an_edge_in_the_admin_and_creators_cannot(client):
    from apps.nodes.models import Node
    from creatorcommerce.signing.models import SigningKey
    from tests.factories import CreatorFactory, StaffFactory

    jwk = OKPKey.generate_key("Ed25519", parameters={"kid": "venue-9-key"}).as_dict(private=False)
    client.force_login(CreatorFactory())
    assert client.get("/admin/nodes/node/add/").status_code in (302, 403)
    client.force_login(StaffFactory())
    response = client.post("/admin/nodes/node/add/", {"node_id": "venue-9", "public_jwk": json.dumps(jwk)})
    assert response.status_code == 302, response.content[:2000]
    assert Node.objects.filter(node_id="venue-9").exists()
    assert SigningKey.objects.get(kid="venue-9-key").node == "venue-9"
    private = OKPKey.generate_key("Ed25519", parameters={"kid": "k2"}).as_dict(private=True)
    response = client.post("/admin/nodes/node/add/", {"node_id": "venue-10", "public_jwk": json.dumps(private)})
    assert response.status_code == 200 and not Node.objects.filter(node_id="venue-10").exists()
    node = Node.objects.get(node_id="venue-9")
    assert client.get(f"/admin/nodes/node/{node.pk}/change/").status_code == 200
    client.post("/admin/nodes/node/", {"action": "deactivate", "_selected_action": [node.pk]})
    node.refresh_from_db()
    assert not node.is_active


def test_a_batch_naming_one_event_twice_is_malformed_and_records_nothing(node_key):
    from apps.nodes.exceptions import SyncBatchInvalid
    from apps.nodes.models import NodeEvent
    from apps.nodes.services import batch_ingest

    twice = [order_event(1, 1), {**order_event(1, 1), "seq": 2}]
    with pytest.raises(SyncBatchInvalid):
        batch_ingest(token=sign(batch(twice), node_key))
    assert NodeEvent.objects.count() == 0


def test_one_batch_rolls_back_a_new_buyer_with_its_order_and_applies_an_order_twice_in_order(node_key):
    """The batch's lookups (services._Lookups) never reuse a row a rolled-back order made: a
    new buyer whose first order is unresolvable is created again for their next order in the
    same batch; and one order's placed and refunded documents in one batch both apply."""
    from apps.accounts.models import User
    from apps.nodes.models import NodeEvent, NodeOrder
    from apps.nodes.services import batch_ingest

    bad = order_event(1, 7)
    bad["refs"]["order"]["lines"].append({**bad["refs"]["order"]["lines"][0], "sku": "NOT-HERE"})
    good = order_event(2, 8)
    good["refs"]["order"]["buyer"] = bad["refs"]["order"]["buyer"]  # the same new buyer
    refunded = order_event(3, 8, status="refunded", event_type="order.refunded")
    refunded["refs"]["order"]["buyer"] = bad["refs"]["order"]["buyer"]
    later = order_event(4, 8)  # a later document of order 8 (paid again): newer by seq, it applies
    answer = batch_ingest(token=sign(batch([bad, good, refunded]), node_key))
    assert answer["acked_seq"] == 3
    assert dict(NodeEvent.objects.values_list("seq", "outcome")) == {1: "unresolved", 2: "applied", 3: "applied"}
    mirror = NodeOrder.objects.select_related("order__buyer").get(edge_order=8)
    assert (mirror.doc_seq, mirror.order.status) == (3, "refunded")
    assert mirror.order.buyer == User.objects.get(email=bad["refs"]["order"]["buyer"])
    assert not NodeOrder.objects.filter(edge_order=7).exists()
    batch_ingest(token=sign(batch([later]), node_key))
    mirror.refresh_from_db()
    assert mirror.doc_seq == 4
