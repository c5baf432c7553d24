"""Reconciliation (docs/edge.md, "Reconciliation"): the staff API and admin page on the cloud,
fed by signed batches built in process (tests/nodes/test_ingest.py's helpers), and once end
to end with a real edge relaying to a real cloud."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.nodes.test_ingest import NODE, batch, node_key, order_event, sign  # noqa: F401 (node_key: a fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)  # a fixed edge clock: day 1 is Dec 3, day 2 Dec 4


def at(event: dict, when: datetime) -> dict:
    """The event recorded on the edge at ``when`` (its order created then too)."""
    event["created_at"] = when.isoformat()
    event["refs"]["order"]["created_at"] = when.isoformat()
    event["refs"]["order"]["paid_at"] = when.isoformat()
    return event


def reported(events: list[dict], *, currencies=None, days=None, head=None) -> dict:
    """A batch whose ``totals`` carry what a current edge reports (docs/edge.md, "The batch")."""
    body = batch(events)
    body["totals"] = dict(currencies or {})
    if days is not None:
        body["totals"]["days"] = days
    if head is not None:
        body["totals"]["head"] = head
    return body


def usd(orders: int, units: int, amount: str) -> dict:
    return {"USD": {"orders": orders, "units": units, "amount": amount}}


def ingest(body: dict, key) -> dict:
    from apps.nodes.services import batch_ingest

    return batch_ingest(token=sign(body, key))


@pytest.fixture
def staff_client(client):
    from tests.factories import StaffFactory

    client.force_login(StaffFactory())
    return client


# -- the API ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nodes/", f"/api/v1/nodes/{NODE}/reconciliation/"])
def test_the_api_is_for_staff_only(client, node_key, path):  # noqa: F811
    from tests.factories import CreatorFactory, StaffFactory, UserFactory

    anonymous = client.get(path)
    assert anonymous.status_code in (401, 403) and anonymous.json()["code"] == "not_authenticated"
    for user in (UserFactory(), CreatorFactory()):
        client.force_login(user)
        refused = client.get(path)
        assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    client.force_login(StaffFactory())
    assert client.get(path).status_code == 200


def test_unknown_node_is_a_404_with_a_code(staff_client):
    response = staff_client.get("/api/v1/nodes/no-such-node/reconciliation/")
    assert (response.status_code, response.json()["code"]) == (404, "node_not_found")


def test_an_edge_has_no_reconciliation_api(staff_client, settings):
    settings.NODE_ROLE = "edge"
    response = staff_client.get("/api/v1/nodes/")
    assert (response.status_code, response.json()["code"]) == (404, "not_cloud")


def test_a_node_with_a_gap_shows_it_and_its_lag(staff_client, node_key):  # noqa: F811
    events = [at(order_event(seq, seq), T0 + timedelta(minutes=seq)) for seq in (1, 2, 5, 6)]
    ingest(reported(events[:2]), node_key)
    head = {"seq": 8, "at": (T0 + timedelta(minutes=8)).isoformat()}
    ingest(reported(events[2:], head=head), node_key)

    nodes = staff_client.get("/api/v1/nodes/").json()
    assert len(nodes) == 1
    row = nodes[0]
    assert set(row) >= {"id", "role", "last_sync_at", "acked_seq", "lag_events", "lag_seconds"}
    assert (row["id"], row["role"], row["acked_seq"]) == (NODE, "edge", 2)
    assert row["last_sync_at"] is not None
    # The edge says it has 8 events, the cloud holds 1..2 contiguously: 6 behind; the edge
    # recorded its newest (8, minute 8) 6 minutes after the newest acknowledged one (2, minute 2).
    assert (row["lag_events"], row["lag_seconds"]) == (6, 360.0)

    rec = staff_client.get(f"/api/v1/nodes/{NODE}/reconciliation/").json()
    assert rec["gaps"] == [[3, 4]]
    assert (rec["node"], rec["acked_seq"], rec["max_seq"], rec["head_seq"]) == (NODE, 2, 6, 8)
    assert set(rec) >= {"node", "last_sync_at", "edge", "cloud", "gaps", "pending_captures", "days"}

    # The missing events arrive: no gap, and only the 2 events the cloud has not seen are behind.
    fill = [at(order_event(seq, seq), T0 + timedelta(minutes=seq)) for seq in (3, 4)]
    ingest(reported(fill), node_key)
    rec = staff_client.get(f"/api/v1/nodes/{NODE}/reconciliation/").json()
    assert rec["gaps"] == [] and (rec["lag_events"], rec["lag_seconds"]) == (2, 120.0)


def test_an_edge_that_reports_no_head_lags_by_what_it_sent(staff_client, node_key):  # noqa: F811
    events = [at(order_event(seq, seq), T0 + timedelta(seconds=seq)) for seq in (1, 4)]
    ingest(reported(events), node_key)  # a batch of an edge before totals.head: still valid
    row = staff_client.get("/api/v1/nodes/").json()[0]
    assert (row["acked_seq"], row["lag_events"], row["lag_seconds"]) == (1, 3, 3.0)


def test_totals_match_after_a_synced_set_of_orders(staff_client, node_key):  # noqa: F811
    # Day 1: orders 1 (2 units) and 2 (1 unit); day 2: order 3 (3 units), refunded later.
    day1, day2 = T0, T0 + timedelta(days=1)
    events = [
        at(order_event(1, 1, quantity=2), day1),
        at(order_event(2, 2, quantity=1), day1 + timedelta(hours=1)),
        at(order_event(3, 3, quantity=3), day2),
    ]
    days = {"2026-12-03": usd(2, 3, "30.00"), "2026-12-04": usd(1, 3, "30.00")}
    ingest(reported(events, currencies=usd(3, 6, "60.00"), days=days), node_key)
    rec = staff_client.get(f"/api/v1/nodes/{NODE}/reconciliation/").json()
    assert rec["edge"] == rec["cloud"] == {"orders": 3, "units": 6, "amount": {"USD": "60.00"}}
    assert rec["match"] is True and rec["gaps"] == [] and rec["lag_events"] == 0
    assert rec["days"] == [
        {"date": "2026-12-04", "edge": {"orders": 1, "units": 3, "amount": {"USD": "30.00"}},
         "cloud": {"orders": 1, "units": 3, "amount": {"USD": "30.00"}}, "match": True},
        {"date": "2026-12-03", "edge": {"orders": 2, "units": 3, "amount": {"USD": "30.00"}},
         "cloud": {"orders": 2, "units": 3, "amount": {"USD": "30.00"}}, "match": True},
    ]  # fmt: skip

    # Order 3 is refunded on the edge: its day is reported again, empty, and still matches.
    refund = at(order_event(4, 3, status="refunded", quantity=3, event_type="order.refunded"), day2)
    ingest(reported([refund], currencies=usd(2, 3, "30.00"), days={"2026-12-04": {}}), node_key)
    rec = staff_client.get(f"/api/v1/nodes/{NODE}/reconciliation/").json()
    assert rec["match"] is True and all(day["match"] for day in rec["days"])
    assert rec["days"][0]["edge"] == {"orders": 0, "units": 0, "amount": {}}


def test_a_day_where_the_edge_reports_more_than_the_cloud_holds_is_a_mismatch(staff_client, node_key):  # noqa: F811
    day1, day2 = T0, T0 + timedelta(days=1)
    ingest(reported([at(order_event(1, 1), day1)], days={"2026-12-03": usd(1, 2, "20.00")}), node_key)
    # The edge reports 2 orders on day 2; the cloud received only one of them (the other's
    # event has not reached it yet).
    days = {"2026-12-04": usd(2, 4, "40.00")}
    ingest(reported([at(order_event(2, 2), day2)], currencies=usd(3, 6, "60.00"), days=days), node_key)
    rec = staff_client.get(f"/api/v1/nodes/{NODE}/reconciliation/").json()
    by_day = {day["date"]: day for day in rec["days"]}
    assert by_day["2026-12-03"]["match"] is True
    assert by_day["2026-12-04"]["match"] is False
    assert by_day["2026-12-04"]["edge"]["orders"] == 2 and by_day["2026-12-04"]["cloud"]["orders"] == 1
    assert rec["match"] is False

    # An older batch replayed (a lower to_seq) does not overwrite the newer day report.
    ingest(reported([at(order_event(1, 1), day1)], days={"2026-12-04": usd(1, 2, "20.00")}), node_key)
    rec = staff_client.get(f"/api/v1/nodes/{NODE}/reconciliation/").json()
    assert {d["date"]: d["edge"]["orders"] for d in rec["days"]}["2026-12-04"] == 2

    # The admin page highlights that day.
    from apps.nodes.models import Node

    page = staff_client.get(f"/admin/nodes/node/{Node.objects.get(node_id=NODE).pk}/reconciliation/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'class="mismatch" data-date="2026-12-04"' in html
    assert 'class="" data-date="2026-12-03"' in html
    assert "1 day differs" in html


def test_days_the_edge_never_reported_do_not_match(staff_client, node_key):  # noqa: F811
    ingest(reported([at(order_event(1, 1), T0)]), node_key)  # an edge before totals.days
    rec = staff_client.get(f"/api/v1/nodes/{NODE}/reconciliation/").json()
    assert rec["days"] == [
        {"date": "2026-12-03", "edge": None, "cloud": {"orders": 1, "units": 2, "amount": {"USD": "20.00"}},
         "match": False}
    ]  # fmt: skip


def offline_event(seq: int, edge_order: int, *, status="accepted_offline", event_type="order.accepted_offline"):
    event = at(order_event(seq, edge_order, status=status, event_type=event_type), T0 + timedelta(seconds=seq))
    document = event["refs"]["order"]
    document["payment_status"] = "pending" if status == "accepted_offline" else "authorized"
    if status != "paid":
        document["paid_at"] = None
    event["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"offline/{edge_order}/{seq}"))
    return event


def test_pending_offline_captures_are_counted(staff_client, node_key):  # noqa: F811
    events = [
        offline_event(1, 11),  # still pending
        offline_event(2, 12),  # pending, captured by seq 4
        offline_event(3, 13),  # pending, declined by seq 5
        offline_event(4, 12, status="paid", event_type="order.placed"),
        offline_event(5, 13, status="capture_declined", event_type="order.capture_declined"),
        order_event(6, 14, quantity=3),  # an ordinary paid order
        offline_event(7, 15),  # pending
    ]
    events[6]["refs"]["order"]["total"] = "7.50"
    ingest(reported(events), node_key)
    rec = staff_client.get(f"/api/v1/nodes/{NODE}/reconciliation/").json()
    pending = rec["pending_captures"]
    assert (pending["orders"], pending["amount"]) == (2, {"USD": "27.50"})
    assert [item["edge_order"] for item in pending["items"]] == [11, 15]
    # Relayed only after it was captured, an offline order's document already says paid.
    late = offline_event(8, 16)
    late["refs"]["order"].update(status="paid", paid_at=T0.isoformat())
    ingest(reported([late]), node_key)
    assert staff_client.get(f"/api/v1/nodes/{NODE}/reconciliation/").json()["pending_captures"]["orders"] == 2


def test_events_the_cloud_could_not_apply_are_listed(staff_client, node_key):  # noqa: F811
    unknown = order_event(2, 2)
    unknown["refs"]["order"]["lines"][0]["sku"] = "NOT-HERE"
    ingest(reported([order_event(1, 1), unknown]), node_key)
    rec = staff_client.get(f"/api/v1/nodes/{NODE}/reconciliation/").json()
    assert rec["unresolved"]["events"] == 1
    assert rec["unresolved"]["items"][0]["seq"] == 2 and "NOT-HERE" in rec["unresolved"]["items"][0]["detail"]


def test_malformed_day_totals_are_refused_and_record_nothing(node_key):  # noqa: F811
    from apps.nodes.exceptions import SyncBatchInvalid
    from apps.nodes.models import NodeEvent

    for bad in (
        {"days": {"03/12/2026": usd(1, 1, "1.00")}},
        {"days": {"2026-12-03": {"USD": {"orders": -1, "units": 1, "amount": "1.00"}}}},
        {"days": {"2026-12-03": {"USD": {"orders": 1, "units": 1, "amount": "lots"}}}},
        {"days": []},
        {"head": {"seq": 0, "at": None}},  # behind the batch's own to_seq
        {"head": {"seq": 5, "at": "yesterday"}},
    ):
        body = reported([order_event(1, 1)])
        body["totals"] = bad
        with pytest.raises(SyncBatchInvalid):
            ingest(body, node_key)
    assert NodeEvent.objects.count() == 0


def test_staff_answers_match_the_openapi_schema(node_key):  # noqa: F811
    """schemathesis on the two operations as staff, with a node that has a gap, days, a
    mismatch and a pending capture (tests/ops/test_schemathesis.py runs them as others)."""
    import schemathesis
    from django.core.wsgi import get_wsgi_application
    from django.test import Client
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    from tests.factories import PASSWORD, StaffFactory

    events = [at(order_event(1, 1), T0), offline_event(2, 2), at(order_event(4, 4), T0)]
    ingest(reported(events, currencies=usd(2, 4, "40.00"), days={"2026-12-03": usd(3, 6, "60.00")}), node_key)
    staff = StaffFactory()
    login = Client().post(
        "/_allauth/app/v1/auth/login",
        json.dumps({"email": staff.email, "password": PASSWORD}),
        content_type="application/json",
    )
    headers = {"X-Session-Token": login.json()["meta"]["session_token"]}
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())
    seen = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/api/v1/nodes/"):
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
        def check(case):
            if "node_id" in (case.path_parameters or {}):
                case.path_parameters["node_id"] = NODE
            response = case.call(headers=headers)
            case.validate_response(
                response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
            )
            seen.append((case.operation.path, response.status_code))

        check()
    assert {("/api/v1/nodes/", 200), ("/api/v1/nodes/{node_id}/reconciliation/", 200)} <= set(seen)


# -- the admin page ----------------------------------------------------------------------------


def test_the_admin_pages_are_for_staff(client, node_key):  # noqa: F811
    from apps.nodes.models import Node
    from tests.factories import CreatorFactory, StaffFactory

    ingest(reported([at(order_event(1, 1), T0), at(order_event(3, 3), T0)]), node_key)
    node = Node.objects.get(node_id=NODE)
    pages = ["/admin/nodes/node/reconciliation/", f"/admin/nodes/node/{node.pk}/reconciliation/"]
    assert client.get(pages[0]).status_code == 302  # to the login
    client.force_login(CreatorFactory())
    assert [client.get(page).status_code for page in pages] == [403, 403]
    client.force_login(StaffFactory())
    overview, one = (client.get(page) for page in pages)
    assert overview.status_code == one.status_code == 200
    assert f'data-node="{NODE}"' in overview.content.decode()
    html = one.content.decode()
    assert '<span class="flag">2</span>' in html  # the missing range, named
    assert "2 events, 0 s" in html
    # Reachable from the node admin: the list and the node's page link to it.
    link = f"/admin/nodes/node/{node.pk}/reconciliation/"
    assert link in client.get("/admin/nodes/node/").content.decode()
    assert link in client.get(f"/admin/nodes/node/{node.pk}/change/").content.decode()
    assert "/admin/nodes/node/reconciliation/" in client.get("/admin/").content.decode()


# -- end to end ----------------------------------------------------------------------------------


@pytest.mark.redis
def test_a_synced_edge_reconciles_with_no_gap_and_matching_days(edge, proxy, beat):
    """The real relay's batches (totals with days and head) into the real cloud."""
    from tests.factories import make_buyer
    from tests.nodes.conftest import EDGE, wait_until
    from tests.nodes.test_sync import assert_cloud_equals_edge, sell_some, synced

    proxy.mode = "pass"
    sell_some(8, [make_buyer(email=f"rec-buyer-{i}@edge.test") for i in range(2)])
    wait_until(lambda: synced(edge), timeout=15, message="the cloud acknowledged every event")
    assert_cloud_equals_edge(edge)
    script = (
        "import json; from apps.nodes.models import Node; "
        "from apps.nodes.reconciliation import node_reconciliation; "
        f"print(json.dumps(node_reconciliation(Node.objects.get(node_id={EDGE!r})), default=str))"
    )
    from tests.browser import manage

    rec = json.loads(manage(edge.env, "shell", "-c", script).strip().splitlines()[-1])
    assert rec["gaps"] == [] and rec["lag_events"] == 0 and rec["lag_seconds"] == 0
    assert rec["match"] is True and rec["edge"]["orders"] == 8
    assert rec["days"] and all(day["match"] for day in rec["days"])
    assert sum(day["edge"]["orders"] for day in rec["days"]) == 8
    assert rec["pending_captures"]["orders"] == 0
