"""Catalog to the edge (docs/edge.md, "Catalog to the edge").

In one process: the cloud's side of the handover (exactly once, also when two first pulls
race) and its refusal of edits to an edge-owned stock row (service, API, admin). With two
nodes (the cloud a daphne subprocess on its own database, the edge this process, the fault
proxy between them, as in test_sync.py): the first pull creates the catalog and hands the
venue over once, the second changes nothing, a price change crosses, an edge sale is never
overwritten, and unauthenticated requests are refused."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from django.db import connections

from tests.factories import make_buyer
from tests.nodes.conftest import EDGE, EDGE_KEY, EDGE_PRIVATE_JWK, EDGE_PUBLIC_JWK, SHOP, seed_catalog, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

VENUE = "Pop-up"
_keys = itertools.count(1)


# -- the cloud's side, in one process ---------------------------------------------------------


@pytest.fixture
def assigned_node():
    """The shared catalog (30 TEE at the venue), and a node registered with its shop and venue."""
    from apps.nodes.services import node_register

    seed_catalog()
    node, _ = node_register(node_id="edge-y", public_jwk=EDGE_PUBLIC_JWK, shop_slug=SHOP, venue_name=VENUE)
    return node


def test_two_first_pulls_at_once_hand_the_venue_over_exactly_once(assigned_node):
    from apps.catalog.models import StockLevel
    from apps.nodes.catalog import catalog_document, venue_take
    from apps.nodes.models import NodeAllocation
    from creatorcommerce.spine.models import OutboxEvent

    start, documents = threading.Barrier(2), []

    def first_pull():
        try:
            start.wait()
            documents.append(catalog_document(venue_take(assigned_node)))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first_pull) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(documents) == 2
    assert documents[0]["allocation"] == documents[1]["allocation"]
    assert documents[0]["allocation"]["units"] == {"TEE": 30}
    assert list(NodeAllocation.objects.values_list("sku", "units")) == [("TEE", 30)]
    level = StockLevel.objects.select_related("location").get(sku__code="TEE", location__name=VENUE)
    assert (level.available, level.location.owner_node) == (0, "edge-y")
    assert OutboxEvent.objects.filter(type="node.venue_taken").count() == 1
    # A third pull later: the same allocation, nothing handed over again.
    again = catalog_document(venue_take(assigned_node))
    assert again["allocation"] == documents[0]["allocation"]
    assert OutboxEvent.objects.filter(type="node.venue_taken").count() == 1


def test_the_cloud_refuses_edits_to_an_edge_owned_stock_row(assigned_node, client):
    from apps.accounts.models import User
    from apps.catalog.exceptions import StockOwnedByEdge
    from apps.catalog.models import SKU, Location, StockLevel
    from apps.catalog.services import stock_adjust
    from apps.nodes.catalog import venue_take
    from tests.factories import StaffFactory

    venue_take(assigned_node)
    tee = SKU.objects.get(code="TEE")
    venue = Location.objects.get(name=VENUE)
    with pytest.raises(StockOwnedByEdge):
        stock_adjust(sku=tee, location=venue, add=5)
    # The API answers 409 with a code.
    creator = User.objects.get(email="creator@edge.test")
    client.force_login(creator)
    response = client.post(
        "/api/v1/skus/TEE/stock/", json.dumps({"add": 5, "location": venue.pk}), content_type="application/json"
    )
    assert response.status_code == 409 and response.json()["code"] == "stock_owned_by_edge"
    # Other locations stay the cloud's.
    response = client.post("/api/v1/skus/TEE/stock/", json.dumps({"add": 5}), content_type="application/json")
    assert response.status_code == 200
    # The admin shows the row read-only, says why, and an edit changes nothing.
    level = StockLevel.objects.get(sku=tee, location=venue)
    client.force_login(StaffFactory())
    page = client.get(f"/admin/catalog/stocklevel/{level.pk}/change/")
    assert page.status_code == 200
    assert "owned by edge node edge-y" in page.content.decode()
    assert 'name="available"' not in page.content.decode()
    client.post(f"/admin/catalog/stocklevel/{level.pk}/change/", {"available": 50, "initial-available": 0})
    assert StockLevel.objects.get(pk=level.pk).available == 0
    # The sync plane applying the edge's own report may (as_node).
    stock_adjust(sku=tee, location=venue, set_to=0, as_node="edge-y")


def test_node_assignment_is_checked():
    from apps.nodes.services import node_register

    seed_catalog()
    with pytest.raises(ValueError, match="no venue"):
        node_register(node_id="edge-z", public_jwk=EDGE_PUBLIC_JWK, shop_slug=SHOP, venue_name="Main warehouse")
    with pytest.raises(ValueError, match="no shop"):
        node_register(node_id="edge-z", public_jwk=EDGE_PUBLIC_JWK, shop_slug="nope", venue_name=VENUE)


# -- two nodes -------------------------------------------------------------------------------


def _cloud_reset_catalog(cloud) -> None:
    """The cloud as before any pull: the node tied to the shop and venue, 30 TEE at the venue
    (the cloud's own), the catalog as seeded."""
    cloud.sql("DELETE FROM nodes_nodeallocation")
    cloud.sql("UPDATE catalog_location SET owner_node = ''")
    cloud.sql(
        "UPDATE nodes_node SET venue_taken_at = NULL, catalog_pulled_at = NULL, "
        "shop_id = (SELECT id FROM accounts_shop WHERE slug = %s), "
        "venue_id = (SELECT l.id FROM catalog_location l JOIN accounts_shop s ON s.id = l.shop_id "
        "WHERE s.slug = %s AND l.name = %s) WHERE node_id = %s",
        [SHOP, SHOP, VENUE, EDGE],
    )
    cloud.sql(
        "UPDATE catalog_stocklevel SET available = 30 WHERE id = (SELECT st.id FROM catalog_stocklevel st "
        "JOIN catalog_sku k ON k.id = st.sku_id JOIN catalog_location l ON l.id = st.location_id "
        "WHERE k.code = 'TEE' AND l.name = %s)",
        [VENUE],
    )
    cloud.sql("UPDATE catalog_sku SET price = 10.00 WHERE code = 'TEE'")
    cloud.sql("UPDATE catalog_sku SET is_active = true")
    cloud.sql("DELETE FROM catalog_stocklevel WHERE sku_id IN (SELECT id FROM catalog_sku WHERE code = 'MUG')")
    cloud.sql("DELETE FROM catalog_sku WHERE code = 'MUG'")
    cloud.sql("DELETE FROM catalog_product WHERE title = 'Mug'")


@pytest.fixture
def empty_edge(cloud, proxy, settings):
    """This process as an edge with an empty catalog: everything comes from the pull."""
    from creatorcommerce.signing.models import SigningKey

    cloud.reset()
    _cloud_reset_catalog(cloud)
    settings.NODE_ROLE = "edge"
    settings.NODE_ID = EDGE
    settings.CLOUD_URL = proxy.url
    settings.SYNC_BACKOFF_MIN_SECONDS = 0.5
    settings.SYNC_BACKOFF_MAX_SECONDS = 4.0
    settings.SYNC_TIMEOUT_SECONDS = 5.0
    SigningKey.objects.create(
        kid=EDGE_PUBLIC_JWK["kid"], node=EDGE, private_jwk=EDGE_PRIVATE_JWK, public_jwk=EDGE_PUBLIC_JWK
    )
    proxy.mode = "pass"
    yield cloud
    # The relay's kick thread and the pull thread may be mid-run: let them finish before the
    # database is flushed.
    from apps.nodes import catalog, relay

    for lock in (relay._relay_lock.thread_lock, catalog._pull_lock.thread_lock):
        lock.acquire(timeout=30)
        lock.release()


def _cloud_venue_row(cloud) -> tuple:
    return cloud.sql(
        "SELECT st.available, l.owner_node FROM catalog_stocklevel st JOIN catalog_sku k ON k.id = st.sku_id "
        "JOIN catalog_location l ON l.id = st.location_id WHERE k.code = 'TEE' AND l.name = %s",
        [VENUE],
    )[0]


def _edge_stock(code: str) -> int:
    from apps.catalog.models import StockLevel

    return StockLevel.objects.get(sku__code=code, location__name=VENUE).available


def test_first_pull_builds_the_catalog_and_takes_the_venue_once_and_a_second_changes_nothing(empty_edge, proxy):
    from apps.catalog.models import SKU, Location
    from apps.nodes.catalog import catalog_pull
    from apps.nodes.relay import relay_run
    from creatorcommerce.spine.models import OutboxEvent

    result = catalog_pull()
    assert result["status"] == "applied", result
    assert result["changes"]["products_created"] == 2 and result["changes"]["stock_allocated"] == 1
    skus = {sku.code: (format(sku.price, "f"), sku.currency, sku.shop.slug) for sku in SKU.objects.all()}
    assert skus == {"TEE": ("10.00", "USD", SHOP), "CAP": ("7.50", "EUR", SHOP)}
    venue = Location.objects.get(name=VENUE)
    assert venue.kind == Location.Kind.VENUE and venue.is_default  # the edge sells from its venue
    assert (_edge_stock("TEE"), _edge_stock("CAP")) == (30, 0)
    # The cloud handed the units over: its own row is 0, owned by the edge.
    assert _cloud_venue_row(empty_edge) == (0, EDGE)
    assert empty_edge.sql("SELECT sku, units FROM nodes_nodeallocation") == [("TEE", 30)]

    events = OutboxEvent.objects.count()
    again = catalog_pull()
    assert again == {"status": "applied", "changes": {}}
    assert OutboxEvent.objects.count() == events  # nothing written, nothing emitted
    assert (_edge_stock("TEE"), _edge_stock("CAP")) == (30, 0)
    assert empty_edge.sql("SELECT sku, units FROM nodes_nodeallocation") == [("TEE", 30)]

    # The edge's events tell the cloud its stock: mirrored read-only, the cloud's row stays 0.
    def mirrored():
        relay_run()  # or the kick thread's run ("busy")
        return empty_edge.sql("SELECT available FROM nodes_nodestock WHERE sku = 'TEE' AND location = %s", [VENUE])

    assert wait_until(mirrored, timeout=20, message="the edge's venue stock mirrored in the cloud") == [(30,)]
    assert _cloud_venue_row(empty_edge) == (0, EDGE)


def test_a_cloud_price_change_reaches_the_edge_and_an_edge_sale_is_never_overwritten(empty_edge, proxy):
    from apps.catalog.models import SKU
    from apps.nodes.catalog import catalog_pull
    from apps.orders.services import order_place
    from creatorcommerce.spine.models import OutboxEvent
    from tests.browser import manage

    assert catalog_pull()["status"] == "applied"
    outcome = order_place(
        buyer=make_buyer(email="venue-buyer@edge.test"),
        lines=[("TEE", 2)],
        shop_slug=SHOP,
        idempotency_key=f"catalog-buy-{next(_keys)}",
        fingerprint="f",
    )
    assert outcome.status == 201, outcome.body
    assert _edge_stock("TEE") == 28

    manage(
        empty_edge.env,
        "shell",
        "-c",
        "from decimal import Decimal; from apps.catalog.models import SKU; "
        "from apps.catalog.services import sku_set_price; "
        "sku_set_price(sku_id=SKU.objects.get(code='TEE').pk, price=Decimal('12.00'))",
    )
    before = OutboxEvent.objects.filter(type="price.changed").count()
    result = catalog_pull()
    assert result == {"status": "applied", "changes": {"prices_changed": 1}}
    assert SKU.objects.get(code="TEE").price == 12
    changed = OutboxEvent.objects.filter(type="price.changed").order_by("-id").first()
    assert OutboxEvent.objects.filter(type="price.changed").count() == before + 1
    assert (changed.payload["price"], changed.payload["source"]) == ("12.00", "cloud")
    assert _edge_stock("TEE") == 28  # the edge's sale stands: pulls never set venue stock again
    assert catalog_pull() == {"status": "applied", "changes": {}}
    assert _edge_stock("TEE") == 28


def test_the_pull_backs_off_while_the_cloud_is_unreachable(empty_edge, proxy):
    from apps.nodes.catalog import catalog_pull, catalog_state

    proxy.mode = "refuse"
    assert catalog_pull()["status"] == "failed"
    assert catalog_pull()["status"] == "backoff"  # no second attempt before the wait is over
    state = catalog_state()
    assert state.failures == 1 and state.next_attempt_at is not None and state.last_error
    proxy.mode = "pass"
    wait_until(lambda: catalog_pull()["status"] == "applied", timeout=10, message="pulled once the cloud answers")
    state = catalog_state()
    assert state.failures == 0 and state.next_attempt_at is None and state.allocation_applied_at is not None


def _get(cloud, authorization: str | None, path: str = "/sync/v1/catalog") -> tuple[int, dict]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    request = urllib.request.Request(cloud.base + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _token(claims: dict, key, kid: str) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "EdDSA", "kid": kid, "typ": "sync-request+jws"}).encode())
    payload = b64(json.dumps(claims).encode())
    return f"{header}.{payload}.{b64(key.get_op_key('sign').sign(f'{header}.{payload}'.encode()))}"


def test_unauthenticated_catalog_requests_are_refused(empty_edge, proxy):
    from joserfc.jwk import OKPKey

    from apps.nodes.catalog import request_token

    cloud = empty_edge
    now = int(time.time())
    claims = {"node": EDGE, "iat": now, "path": "/sync/v1/catalog"}
    stranger = OKPKey.generate_key("Ed25519", parameters={"kid": "stranger-1"})
    refused = {
        "absent": (None, "auth_required"),
        "another scheme": (f"Bearer {_token(claims, EDGE_KEY, EDGE_KEY.kid)}", "auth_required"),
        "not a JWS": ("Node not-a-jws", "invalid_signature"),
        "our kid, another key": (f"Node {_token(claims, stranger, EDGE_KEY.kid)}", "invalid_signature"),
        "unknown node": (f"Node {_token(claims, stranger, 'stranger-1')}", "unknown_node"),
        "another node named": (f"Node {_token({**claims, 'node': 'x'}, EDGE_KEY, EDGE_KEY.kid)}", "invalid_signature"),
        "another path": (f"Node {_token({**claims, 'path': '/x'}, EDGE_KEY, EDGE_KEY.kid)}", "invalid_signature"),
        "old token": (f"Node {_token({**claims, 'iat': now - 3600}, EDGE_KEY, EDGE_KEY.kid)}", "token_expired"),
    }
    for case, (authorization, code) in refused.items():
        status, answer = _get(cloud, authorization)
        assert (status, answer.get("code")) == (401, code), case
    # Nothing was handed over by any of them.
    assert _cloud_venue_row(cloud) == (30, "")
    status, answer = _get(cloud, f"Node {request_token('/sync/v1/catalog')}")
    assert status == 200 and answer["allocation"]["units"] == {"TEE": 30}
    # A node not tied to a shop and venue has no catalog.
    cloud.sql("UPDATE nodes_node SET shop_id = NULL, venue_id = NULL WHERE node_id = %s", [EDGE])
    status, answer = _get(cloud, f"Node {request_token('/sync/v1/catalog')}")
    assert (status, answer["code"]) == (409, "node_not_assigned")


def test_the_admin_registers_a_node_with_its_shop_and_venue(client):
    from apps.catalog.models import Location
    from apps.nodes.models import Node
    from tests.factories import StaffFactory

    seed_catalog()
    client.force_login(StaffFactory())
    venue = Location.objects.get(name=VENUE)
    form = {"node_id": "edge-admin", "public_jwk": json.dumps(EDGE_PUBLIC_JWK), "shop": SHOP}
    page = client.post("/admin/nodes/node/add/", {**form, "venue": Location.objects.get(name="Main warehouse").pk})
    assert page.status_code == 200 and not Node.objects.filter(node_id="edge-admin").exists()  # not a venue
    page = client.post("/admin/nodes/node/add/", {**form, "venue": venue.pk})
    assert page.status_code == 302
    node = Node.objects.get(node_id="edge-admin")
    assert (node.shop.slug, node.venue_id, node.venue_taken_at) == (SHOP, venue.pk, None)


def test_later_catalog_changes_cross_through_the_operator_command(empty_edge, proxy):
    """A product added and a SKU withdrawn in the cloud reach the edge with `manage.py
    catalog_pull`; the new SKU has no venue units on the edge (the venue's stock is the
    edge's to set), the withdrawn one is no longer sold there."""
    from django.core.management import call_command

    from apps.catalog.models import SKU, StockLevel
    from tests.browser import manage

    call_command("catalog_pull")
    manage(
        empty_edge.env,
        "shell",
        "-c",
        "from apps.accounts.models import Shop; from apps.catalog.models import SKU; "
        "from apps.catalog.services import product_create, sku_update; "
        f"shop = Shop.objects.get(slug='{SHOP}'); "
        "product_create(shop=shop, title='Mug', skus=[{'code': 'MUG', 'price': '5.00', 'stock': 9}]); "
        "cap = SKU.objects.get(code='CAP'); cap.is_active = False; sku_update(sku=cap, changed=['is_active'])",
    )
    call_command("catalog_pull")
    mug = SKU.objects.get(code="MUG")
    assert (format(mug.price, "f"), mug.is_active, mug.product.title) == ("5.00", True, "Mug")
    assert StockLevel.objects.get(sku=mug, location__name=VENUE).available == 0
    assert SKU.objects.get(code="CAP").is_active is False
    assert _edge_stock("TEE") == 30


def test_beat_runs_the_pull_off_the_scheduler_thread(empty_edge, proxy):
    """Embedded mode (eager Celery, as in these tests): beat's task only wakes the pull
    thread, which pulls."""
    from apps.nodes.catalog import catalog_state
    from apps.nodes.tasks import pull_catalog

    assert pull_catalog.apply().result == "kicked"
    wait_until(lambda: catalog_state().last_success_at is not None, timeout=20, message="the pull thread pulled")
    assert _edge_stock("TEE") == 30
