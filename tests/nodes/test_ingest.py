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
