"""The HTTP side of creatorcommerce.asgi.application, driven in process as an ASGI server
would drive it: signals, the middleware chain and the view run in one hop to a bounded
pool of threads (creatorcommerce/handlers.py), and everything the chain does still happens."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.factories import make_buyer, make_sku
from tests.helpers import asgi_call as call

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio]


async def test_a_request_crosses_to_a_thread_once(hops):
    status, headers, body = await call("/livez")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    # the chain ran: SecurityMiddleware's and the clickjacking middleware's headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    # request_started, the chain with the view and response.close (request_finished) in
    # one hop. Django's ASGIHandler made 3 around an async chain of about 16.
    assert hops["n"] == 1


@pytest.fixture
def signals_seen():
    from django.core import signals

    seen = []

    def started(**kwargs):
        seen.append("started")

    def finished(**kwargs):
        seen.append("finished")

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    yield seen
    signals.request_started.disconnect(started)
    signals.request_finished.disconnect(finished)


async def test_request_signals_fire_once_each_around_the_view(signals_seen):
    await call("/livez")
    assert signals_seen == ["started", "finished"]


@pytest.mark.urls("tests.ops.asgi_urls")
async def test_requests_run_on_the_bounded_pool_of_long_lived_threads(settings):
    from creatorcommerce.handlers import sync_executor

    settings.ADMISSION_MAX_IN_FLIGHT = 0  # all 40 wait for the pool (tests/overload covers the bound)
    names = [json.loads((await call("/where/"))[2])["thread"] for _ in range(5)]
    names += [json.loads(body)["thread"] for _, _, body in await asyncio.gather(*(call("/where/") for _ in range(40)))]
    assert all(name.startswith("django-request") for name in names)
    # Threads are reused, never more than the pool holds, however many requests are in flight.
    assert len(set(names)) <= settings.ASGI_SYNC_THREADS
    assert sync_executor()._max_workers == settings.ASGI_SYNC_THREADS


@pytest.mark.urls("tests.ops.asgi_urls")
async def test_a_streamed_response_is_sent_whole_then_closed(signals_seen):
    from tests.ops import asgi_urls

    asgi_urls.closed.clear()
    status, headers, body = await call("/streamed/")
    assert headers["content-type"] == "text/plain"
    assert status == 200 and body == b"one,two,three"
    assert asgi_urls.closed == ["stream"]
    assert signals_seen == ["started", "finished"]  # finished only after the last chunk


async def test_errors_still_answer_json_through_the_sync_chain():
    status, headers, body = await call("/api/v1/no-such-thing/")
    assert status == 404
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["code"] == "not_found"


async def test_hostile_requests_get_their_json_errors_through_the_asgi_app():
    """creatorcommerce/guard.py answers the same under ASGI (daphne, uvicorn) as in tests."""
    headers = {"content-type": "application/json"}
    deep = ("[" * 1000 + "]" * 1000).encode()
    status, _, body = await call("/_allauth/app/v1/auth/login", "POST", headers=headers, body=deep)
    assert (status, json.loads(body)["code"]) == (400, "malformed_json")
    status, _, body = await call("/api/v1/skus/\x00/")
    assert (status, json.loads(body)["code"]) == (400, "invalid_characters")
    status, _, body = await call("/hooks/media/auth", "POST", headers=headers, body=b"{" + b" " * 3_000_000 + b"}")
    assert (status, json.loads(body)["code"]) == (413, "too_large")
    # Chunked, without a Content-Length: Django stops reading at the limit; still a JSON 413.
    chunked = {**headers, "transfer-encoding": "chunked"}
    status, _, body = await call("/api/v1/orders/", "POST", headers=chunked, body=b"{" + b" " * 3_000_000 + b"}")
    assert (status, json.loads(body)["code"]) == (413, "too_large")


async def test_a_buy_through_the_asgi_app(settings):
    from asgiref.sync import sync_to_async
    from django.contrib.auth import login
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.test import RequestFactory

    def setup():
        buyer, sku = make_buyer(), make_sku(stock=3)
        request = RequestFactory().get("/")
        request.session = SessionStore()
        login(request, buyer, backend="apps.accounts.backends.ModelBackend")
        request.session.save()
        return sku, request.session.session_key

    sku, token = await sync_to_async(setup)()
    headers = {"X-Session-Token": token, "Content-Type": "application/json", "Idempotency-Key": "asgi-buy-0001"}
    body = json.dumps({"sku": sku.code, "quantity": 1}).encode()

    status, _, first = await call("/api/v1/orders/", "POST", headers=headers, body=body)
    assert status == 201, first
    assert json.loads(first)["status"] == "paid"

    status, replay_headers, again = await call("/api/v1/orders/", "POST", headers=headers, body=body)
    assert status == 201 and again == first
    assert replay_headers["idempotent-replayed"] == "true"

    status, _, missing = await call("/api/v1/orders/", "POST", headers={**headers, "Idempotency-Key": ""}, body=body)
    assert status == 400 and json.loads(missing)["code"] == "idempotency_key_missing"


def test_start_up_objects_are_frozen_out_of_full_collections():
    import gc

    import creatorcommerce.asgi  # noqa: F401 (imported by this module already: freezing ran)

    # Start-up (settings, models, the URLconf with every view) leaves ~130,000 objects.
    assert gc.get_freeze_count() > 50_000
