"""GET /metrics (creatorcommerce/metrics.py, docs/operations.md "Metrics"): who may scrape,
and figures that move by exactly what was done: buys by outcome and requests by route after
real buys, requests through the real ASGI application, the Celery queues on the real Redis
broker, the outbox's handler and relay backlogs on the real database."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from creatorcommerce.metrics import scrape_allowed
from creatorcommerce.spine.events import emit
from creatorcommerce.spine.registry import handler, unregister
from creatorcommerce.spine.tasks import apply_handler
from tests.factories import make_buyer, make_sku
from tests.helpers import parse_scrape, scrape
from tests.ops.test_asgi import call

pytestmark = pytest.mark.django_db

ORDERS = "api/v1/orders/"


def post_buy(client, body, key, **headers):
    return client.post(
        "/api/v1/orders/",
        json.dumps(body),
        content_type="application/json",
        headers={"Idempotency-Key": key, **headers},
    )


@pytest.fixture
def buyer_client(client):
    client.force_login(make_buyer())
    return client


def test_a_buy_and_refused_buys_move_their_counters_by_exactly_one_each(buyer_client, client):
    sku = make_sku(stock=1)
    declining = make_buyer(token="tok_declined")
    before = scrape(buyer_client)
    assert post_buy(buyer_client, {"sku": sku.code, "quantity": 1}, "metrics-key-1").status_code == 201
    replay = post_buy(buyer_client, {"sku": sku.code, "quantity": 1}, "metrics-key-1")
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    sold_out = post_buy(buyer_client, {"sku": sku.code, "quantity": 1}, "metrics-key-2")
    assert sold_out.status_code == 409 and sold_out.json()["code"] == "sold_out"
    assert post_buy(buyer_client, {"sku": sku.code, "quantity": 0}, "metrics-key-3").status_code == 400
    buyer_client.force_login(declining)
    restocked = make_sku(stock=5)
    assert post_buy(buyer_client, {"sku": restocked.code, "quantity": 1}, "metrics-key-4").status_code == 402
    after = scrape(buyer_client)

    def delta(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)

    outcomes = {outcome: delta("cc_buys_total", outcome=outcome) for outcome in ("created", "replayed", "sold_out")}
    assert outcomes == {"created": 1, "replayed": 1, "sold_out": 1}
    assert delta("cc_buys_total", outcome="refused") == 1
    assert delta("cc_buys_total", outcome="declined") == 1
    assert delta("cc_buys_total", outcome="error") == 0
    # Requests by route (the URL pattern) and status class; the first scrape is counted too.
    count = "cc_http_request_duration_seconds_count"
    assert delta(count, route=ORDERS, method="POST", status="2xx") == 2
    assert delta(count, route=ORDERS, method="POST", status="4xx") == 3
    assert delta(count, route="metrics", method="GET", status="2xx") == 1
    assert delta("cc_http_request_duration_seconds_bucket", route=ORDERS, method="POST", status="4xx", le="+Inf") == 3
    # A path no pattern matches is one label value, whatever the path.
    client.get("/no/such/page-1")
    client.get("/no/such/page-2")
    unmatched = {"route": "unmatched", "method": "GET", "status": "4xx"}
    assert scrape(client).value(count, **unmatched) - after.value(count, **unmatched) == 2


def test_other_addresses_are_refused_with_a_code(client, settings):
    """Loopback only by default; the client address is clientip's, so a forged
    X-Forwarded-For counts for nothing and a trusted proxy's forwarded client is the one
    checked; a bearer token opens it to Prometheus elsewhere."""
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403 and response.json()["code"] == "metrics_forbidden"
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    # Behind a trusted proxy on loopback: the forwarded client is checked, not the proxy.
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 200
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/24"]
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    settings.METRICS_TOKEN = "scrape-token-0123456789"
    assert (
        client.get(
            "/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789"
        ).status_code
        == 200
    )
    wrong = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer scrape-token-0123456788")
    assert wrong.status_code == 403 and wrong.json()["code"] == "metrics_forbidden"
    assert client.post("/metrics", REMOTE_ADDR="10.0.0.7").status_code == 405


def test_an_address_that_is_not_one_is_refused(rf):
    assert not scrape_allowed(rf.get("/metrics", REMOTE_ADDR="not-an-address"))


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_the_asgi_application_times_requests_and_answers_their_id(close_db_after):
    """Through creatorcommerce.asgi.application (ObservedHTTP outermost): a well-formed
    X-Request-ID is answered as is, anything else replaced by a new id; the request is
    counted under its route once (not again by the middleware)."""
    status, headers, body = await call("/metrics")
    assert status == 200
    before = parse_scrape(body.decode())
    status, headers, _ = await call("/livez", headers={"X-Request-ID": "lb-7f3a:42"})
    assert status == 200 and headers["x-request-id"] == "lb-7f3a:42"
    status, headers, _ = await call("/livez", headers={"X-Request-ID": "bad id\\with spaces"})
    assert status == 200 and headers["x-request-id"] != "bad id\\with spaces" and len(headers["x-request-id"]) == 32
    status, headers, _ = await call("/livez", headers={"X-Request-ID": "x" * 129})
    assert len(headers["x-request-id"]) == 32
    status, _, body = await call("/metrics")
    after = parse_scrape(body.decode())
    count = "cc_http_request_duration_seconds_count"
    assert (
        after.value(count, route="livez", method="GET", status="2xx")
        - before.value(count, route="livez", method="GET", status="2xx")
        == 3
    )
    assert (
        after.value(count, route="metrics", method="GET", status="2xx")
        - before.value(count, route="metrics", method="GET", status="2xx")
        == 1
    )


@pytest.mark.redis
def test_celery_queue_depth_is_read_from_the_redis_broker(client, settings):
    from creatorcommerce.celery import app

    assert settings.CELERY_BROKER_URL.startswith("redis://") and not settings.CELERY_TASK_ALWAYS_EAGER
    app.control.purge()
    try:
        for _ in range(2):
            app.send_task("creatorcommerce.spine.tasks.redeliver_pending", queue="celery")
        app.send_task("apps.devices.tasks.send_cue", args=[0], queue="cues")
        figures = scrape(client)
        assert figures.value("cc_celery_queue_length", queue="celery") == 2
        assert figures.value("cc_celery_queue_length", queue="cues") == 1
        assert figures.value("cc_metrics_collector_up", collector="celery.queues") == 1
    finally:
        app.control.purge()
    assert scrape(client).value("cc_celery_queue_length", queue="celery") == 0


def test_without_a_broker_there_is_no_queue_figure(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    figures = scrape(client)
    assert figures.labelled("cc_celery_queue_length") == []
    assert figures.value("cc_metrics_collector_up", collector="celery.queues") == 1


def test_a_collector_whose_service_is_down_costs_its_figures_not_the_scrape(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    figures = scrape(client)
    assert figures.value("cc_metrics_collector_up", collector="celery.queues") == 0
    assert figures.value("cc_metrics_collector_up", collector="spine.outbox") == 1
    assert ("cc_outbox_backlog", (("stage", "handlers"),)) in figures


@pytest.fixture
def unchecked_events(settings):
    settings.SPINE_CHECK_EVENTS = False  # a throwaway event type


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_outbox_backlog_counts_handler_runs_not_done_yet(client, unchecked_events):
    """A handler's work handed to the broker but not run yet (no worker) is backlog, with
    its age, until the handler has run."""
    from creatorcommerce.celery import app
    from creatorcommerce.spine.events import _enqueuer

    @handler("test.metered", name="tests.metrics.metered")
    def metered(event):
        pass

    app.conf.task_always_eager = False
    try:
        before = scrape(client).value("cc_outbox_backlog", stage="handlers")
        with transaction.atomic():
            event = emit("test.metered", {})
        _enqueuer().flush(timeout=10)
        pending = scrape(client)
        assert pending.value("cc_outbox_backlog", stage="handlers") == before + 1
        assert pending.value("cc_outbox_backlog_age_seconds", stage="handlers") > 0
        assert apply_handler(event.pk, "tests.metrics.metered") == "applied"
        assert scrape(client).value("cc_outbox_backlog", stage="handlers") == before
    finally:
        unregister("tests.metrics.metered")
        app.control.purge()


def test_an_edge_counts_the_events_the_cloud_has_not_acknowledged(client, settings, unchecked_events):
    from apps.nodes.selectors import outbox_last_seq
    from apps.nodes.services import outbox_stamp, relay_acked, relay_state

    assert scrape(client).labelled("cc_outbox_backlog") == [{"stage": "handlers"}]  # a cloud: no relay
    settings.NODE_ROLE = "edge"
    before = scrape(client).value("cc_outbox_backlog", stage="relay")
    with transaction.atomic():
        for n in range(3):
            emit("test.relayed", {"n": n})
    figures = scrape(client)
    assert figures.value("cc_outbox_backlog", stage="relay") == before + 3
    assert figures.value("cc_outbox_backlog_age_seconds", stage="relay") >= 0
    # Stamped and acknowledged: nothing waits any more.
    assert outbox_stamp() >= 3
    relay_acked(state=relay_state(), acked_seq=outbox_last_seq(), events=3)
    figures = scrape(client)
    assert figures.value("cc_outbox_backlog", stage="relay") == 0
    assert figures.value("cc_outbox_backlog_age_seconds", stage="relay") == 0


def test_the_admission_figures_the_admission_control_counts(client):
    """What the admission control calls (creatorcommerce.metrics.admission_refused and
    in_flight) shows in the scrape under the names the dashboard reads."""
    from creatorcommerce.metrics import admission_refused, in_flight

    before = scrape(client)
    admission_refused("viewer", "overloaded")
    admission_refused("viewer", "overloaded")
    admission_refused("viewer", "client_limit")
    gauge = in_flight("creator")
    gauge.inc()
    during = scrape(client)
    gauge.dec()
    after = scrape(client)
    refused = "cc_admission_refused_total"
    assert (
        during.value(refused, lane="viewer", reason="overloaded")
        - before.value(refused, lane="viewer", reason="overloaded")
        == 2
    )
    assert (
        during.value(refused, lane="viewer", reason="client_limit")
        - before.value(refused, lane="viewer", reason="client_limit")
        == 1
    )
    assert (
        during.value("cc_admission_in_flight", lane="creator") - after.value("cc_admission_in_flight", lane="creator")
        == 1
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_scrape_time_queries_have_a_statement_timeout_of_their_own():
    """A slow database costs a figure, not a stuck scrape; the request's other statements
    keep the server's timeout, inside a caller's transaction too."""
    from django.db import connection

    from creatorcommerce.metrics import scrape_query

    def timeout(cursor):
        cursor.execute("SHOW statement_timeout")
        return cursor.fetchone()[0]

    with connection.cursor() as cursor:
        server = timeout(cursor)
    with scrape_query(timeout_ms=1500) as cursor:
        assert timeout(cursor) == "1500ms"
    with connection.cursor() as cursor:
        assert timeout(cursor) == server
    with transaction.atomic():
        with scrape_query(timeout_ms=1500) as cursor:
            assert timeout(cursor) == "1500ms"
        with connection.cursor() as cursor:
            assert timeout(cursor) == server
