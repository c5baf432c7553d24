"""Admission control (creatorcommerce/admission.py, docs/overload.md): a process takes at
most ADMISSION_MAX_IN_FLIGHT requests into its pool, running or waiting; beyond that a
request is answered at once 503 overloaded with Retry-After, creators' control-room actions
and the media hook keep a reserve, probes always pass.

The pool is made busy deterministically: a view that holds its thread until the test sets
an Event (tests/overload/urls.py), and a pool of two threads, so that admitted requests
also wait in its queue."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from creatorcommerce import admission as adm
from creatorcommerce.process import PerProcess
from tests.factories import CreatorFactory, make_buyer, make_sku
from tests.overload import urls as blocking
from tests.overload.asgi import call, session_token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio, pytest.mark.urls("tests.overload.urls")]


@pytest.mark.parametrize(
    "method, path, expected",
    [
        ("GET", "/livez", adm.PROBE),
        ("GET", "/healthz", adm.PROBE),
        ("GET", "/metrics", adm.PROBE),
        ("POST", "/hooks/media/auth", adm.MEDIA),
        ("POST", "/api/v1/streams/", adm.CREATOR),  # a new drop
        ("PATCH", "/api/v1/streams/7/", adm.CREATOR),
        ("POST", "/api/v1/streams/7/start", adm.CREATOR),
        ("POST", "/api/v1/streams/7/end", adm.CREATOR),
        ("POST", "/api/v1/streams/7/cancel", adm.CREATOR),
        ("POST", "/api/v1/streams/7/pins/", adm.CREATOR),
        ("DELETE", "/api/v1/streams/7/pins/TEE-M/", adm.CREATOR),
        ("POST", "/api/v1/streams/7/deals/3/open", adm.CREATOR),
        ("POST", "/api/v1/devices/4/cues/", adm.CREATOR),
        ("POST", "/api/v1/skus/TEE-M/stock/", adm.CREATOR),
        ("POST", "/admin/catalog/sku/5/change/", adm.CREATOR),
        ("POST", "/api/v1/orders/", adm.BUY),
        # A viewer's writes under a stream are not the creator's.
        ("POST", "/api/v1/streams/7/viewer-token", adm.VIEWER),
        ("POST", "/api/v1/streams/7/reminder/", adm.VIEWER),
        ("GET", "/api/v1/streams/7/", adm.VIEWER),  # reads are viewers', whoever sends them
        ("GET", "/admin/", adm.VIEWER),
        ("GET", "/api/v1/orders/", adm.VIEWER),
        ("GET", "/streams/7/", adm.VIEWER),
        ("GET", "/static/js/stream.js", adm.ASSET),
        ("POST", "/static/js/stream.js", adm.VIEWER),
    ],
)
def test_classes_come_from_method_and_path(method, path, expected):
    assert adm.classify(method, path) == expected


@pytest.fixture
def small_pool(monkeypatch):
    """The process's request pool replaced by two threads: admitted requests queue."""
    from creatorcommerce import handlers

    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="django-request")
    monkeypatch.setattr(handlers, "_executor", PerProcess(lambda: pool))
    blocking.gate.clear()
    blocking.inside.clear()
    yield pool
    blocking.gate.set()
    pool.shutdown(wait=True)


async def until(condition, message: str = "") -> None:
    """Poll ``condition`` on the event loop (the requests run on it) with a deadline."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(message or f"not within 20 s: {condition}")


async def inside(n: int) -> None:
    """Until ``n`` requests hold the pool's threads in the blocking view."""
    await until(lambda: len(blocking.inside) >= n, f"{n} requests never reached the view: {blocking.inside}")


def refused_overloaded(answer) -> bool:
    body = answer.json()
    return (
        answer.status == 503
        and body["code"] == "overloaded"
        and body["message"]
        and answer.headers["retry-after"] in {"1", "2"}
        and body["retry_after"] == int(answer.headers["retry-after"])
        and answer.headers["cache-control"] == "no-store"
    )


async def test_beyond_the_bound_requests_are_refused_at_once_and_creators_keep_their_reserve(
    settings, small_pool, close_db_after
):
    settings.ADMISSION_MAX_IN_FLIGHT = 4
    settings.ADMISSION_CREATOR_RESERVE = 1
    settings.ADMISSION_RETRY_AFTER_SECONDS = 2
    creator = await asyncio.to_thread(CreatorFactory)
    sku = await asyncio.to_thread(make_sku, creator.shop, stock=5)
    creator_token = await asyncio.to_thread(session_token, creator)
    buyer_token = await asyncio.to_thread(session_token, await asyncio.to_thread(make_buyer))
    state = adm.admission()

    # Viewers take the 3 places that are theirs: two run (the pool's threads), one waits.
    held = [asyncio.ensure_future(call("/api/v1/block/")) for _ in range(3)]
    await inside(2)
    assert state.in_flight == 3

    # The pool is full for viewers: 40 more at once, buys and reads, all refused at once,
    # none queued behind the three.
    buys = [
        call(
            "/api/v1/orders/",
            "POST",
            headers={"X-Session-Token": buyer_token, "Idempotency-Key": f"overload-{i:04d}"},
            body={"sku": sku.code, "quantity": 1, "shop": creator.shop.slug},
        )
        for i in range(20)
    ]
    reads = [call("/api/v1/block/") for _ in range(20)]
    refused = await asyncio.gather(*buys, *reads)
    assert all(refused_overloaded(answer) for answer in refused), refused
    assert state.in_flight == 3 and state.peak == 3
    assert state.refused[adm.BUY] == 20 and state.refused[adm.VIEWER] == 20

    # A page is refused in plain text, with the same Retry-After.
    page = await call("/streams/1/")
    assert page.status == 503 and page.headers["content-type"].startswith("text/plain")
    assert page.headers["retry-after"] in {"1", "2"}

    # The creator's control-room action takes the reserved place (and waits for a thread);
    # a second one finds the bound reached.
    stock = asyncio.ensure_future(
        call(f"/api/v1/skus/{sku.code}/stock/", "POST", headers={"X-Session-Token": creator_token}, body={"add": 3})
    )
    await until(lambda: state.in_flight == 4)
    second = await call("/api/v1/streams/1/start", "POST", headers={"X-Session-Token": creator_token})
    assert refused_overloaded(second)
    assert state.refused[adm.CREATOR] == 1

    # A probe is always admitted: a busy process is not a dead one. So is a page's static
    # file, outside the count (it waits for a thread like the rest).
    probe = asyncio.ensure_future(call("/livez"))
    await until(lambda: state.in_flight == 5)
    asset = asyncio.ensure_future(call("/static/js/stream.js"))
    await until(lambda: state.assets_in_flight == 1)
    assert state.in_flight == 5

    blocking.gate.set()
    answers = await asyncio.gather(*held, stock, probe, asset)
    assert [a.status for a in answers[:5]] == [200, 200, 200, 200, 200], answers
    assert answers[5].status != 503
    assert answers[3].json()["available"] == 8  # the creator's change was made
    assert state.in_flight == 0 and state.assets_in_flight == 0 and state.peak == 5
    assert adm.stats()["admitted"] == {
        adm.PROBE: 1,
        adm.ASSET: 1,
        adm.CREATOR: 1,
        adm.MEDIA: 0,
        adm.BUY: 0,
        adm.VIEWER: 3,
    }
    # Once there is room again, viewers are admitted again.
    assert (await call("/livez")).status == 200
    again = await call("/api/v1/block/")
    assert again.status == 200


async def test_a_crowd_at_once_gets_exactly_the_bound_and_never_a_longer_queue(settings, small_pool):
    settings.ADMISSION_MAX_IN_FLIGHT = 6
    settings.ADMISSION_CREATOR_RESERVE = 2
    crowd = [asyncio.ensure_future(call("/api/v1/block/")) for _ in range(60)]
    await inside(2)
    # The refusals are answered without waiting for the pool.
    await until(lambda: sum(task.done() for task in crowd) == 56)
    refused = [task for task in crowd if task.done()]
    assert all(refused_overloaded(task.result()) for task in refused)
    state = adm.admission()
    assert state.in_flight == 4 and state.peak == 4  # 2 running, 2 queued: 6 - the reserve of 2
    blocking.gate.set()
    await asyncio.gather(*crowd)
    assert [task.result().status for task in crowd if task not in refused] == [200] * 4
    assert state.in_flight == 0 and state.peak == 4


async def test_admission_off_admits_everything(settings, small_pool):
    settings.ADMISSION_MAX_IN_FLIGHT = 0
    blocking.gate.set()
    answers = await asyncio.gather(*(call("/api/v1/block/") for _ in range(30)))
    assert {a.status for a in answers} == {200}
    assert adm.admission().refused == dict.fromkeys(adm.CLASSES, 0)


@pytest.mark.urls("creatorcommerce.urls")
def test_every_operation_documents_the_overloaded_refusal(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    operations = [
        (path, method, op)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert len(operations) > 50
    for path, method, op in operations:
        assert "overloaded" in op["responses"]["503"]["description"], (method, path)
    buy = schema["paths"]["/api/v1/orders/"]["post"]["responses"]
    assert "payment_gateway_unavailable" in buy["503"]["description"]
    assert "from the process's memory" in buy["409"]["description"]


async def test_refusals_and_the_requests_in_flight_are_in_the_metrics(settings, small_pool, close_db_after):
    """cc_admission_refused_total and cc_admission_in_flight move with the admissions, a
    refused buy counts in cc_buys_total under the buy's route, and /metrics itself is
    admitted while the viewers' places are full (an operator watches the overload)."""
    from prometheus_client import generate_latest

    from creatorcommerce.metrics import scrape_registry
    from tests.helpers import parse_scrape

    settings.ADMISSION_MAX_IN_FLIGHT = 3
    settings.ADMISSION_CREATOR_RESERVE = 1
    sku = await asyncio.to_thread(make_sku, stock=5)
    buyer_token = await asyncio.to_thread(session_token, await asyncio.to_thread(make_buyer))

    def now():
        return parse_scrape(generate_latest(scrape_registry()).decode())

    before = now()
    held = [asyncio.ensure_future(call("/api/v1/block/")) for _ in range(2)]
    await inside(2)
    buy = await call(
        "/api/v1/orders/",
        "POST",
        headers={"X-Session-Token": buyer_token, "Idempotency-Key": "overload-metrics-1"},
        body={"sku": sku.code, "quantity": 1},
    )
    assert refused_overloaded(buy)
    during = now()
    metrics_page = asyncio.ensure_future(call("/metrics"))  # admitted: waits for a thread, not refused
    await until(lambda: adm.admission().in_flight == 3)
    blocking.gate.set()
    await asyncio.gather(*held)
    scraped = await metrics_page
    assert scraped.status == 200, scraped

    def delta(name, **labels):
        return during.value(name, **labels) - before.value(name, **labels)

    assert delta("cc_admission_refused_total", lane="buy", reason="overloaded") == 1
    assert delta("cc_admission_in_flight", lane="viewer") == 2
    assert delta("cc_buys_total", outcome="unavailable") == 1
    count = "cc_http_request_duration_seconds_count"
    assert delta(count, route="api/v1/orders/", method="POST", status="5xx") == 1
    after = now()
    assert after.value("cc_admission_in_flight", lane="viewer") == before.value("cc_admission_in_flight", lane="viewer")
