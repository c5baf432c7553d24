"""Request ids and JSON logs (creatorcommerce/logs.py, docs/operations.md "Logs"): a buy's
id is answered, written on its JSON access line, stored on every event the buy records, and
named again by the handler a real Celery worker applies to its order.placed, whose own
event carries it on."""

from __future__ import annotations

import io
import json
import logging

import pytest

from apps.orders.handlers import capture_payment  # noqa: F401 (registered under this name)
from creatorcommerce.logs import (
    JsonFormatter,
    PlainFormatter,
    RequestIdFilter,
    accepted_request_id,
    bound_request_id,
)
from creatorcommerce.spine.models import HandlerRun
from tests.factories import make_buyer, make_sku
from tests.helpers import WAIT, events_since, last_event_id, wait_for

CAPTURE = "apps.orders.handlers.capture_payment"


@pytest.fixture
def json_lines():
    """The JSON lines the access log and the spine's tasks write (handlers on those loggers:
    a Celery worker started in the test replaces the root logger's)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    loggers = [logging.getLogger(name) for name in ("creatorcommerce.access", "creatorcommerce.spine.tasks")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield lines
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_buys_request_id_follows_it_through_its_events_to_the_workers_handler(client, settings, json_lines):
    from celery.contrib.testing.worker import start_worker

    from creatorcommerce.celery import app

    settings.ACCESS_LOG = True
    buyer = make_buyer()
    sku = make_sku(stock=5)
    client.force_login(buyer)
    mark = last_event_id()
    request_id = "buy-3f9c2a7e-0001"
    app.conf.task_always_eager = False
    app.control.purge()
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            response = client.post(
                "/api/v1/orders/",
                json.dumps({"sku": sku.code, "quantity": 1}),
                content_type="application/json",
                headers={"Idempotency-Key": "rid-key-0001", "X-Request-ID": request_id},
            )
            assert response.status_code == 201
            assert response["X-Request-ID"] == request_id
            placed = next(e for e in events_since(mark, "order.placed"))
            wait_for(
                lambda: HandlerRun.objects.filter(event=placed, handler=CAPTURE).exists(),
                timeout=WAIT,
                message="the worker applied the capture handler",
            )
            captured = wait_for(lambda: events_since(mark, "order.captured"), timeout=WAIT)
    finally:
        app.control.purge()
    # Every event the buy recorded carries its id, and so does the one its handler recorded
    # in the worker (the id came from the event row: the worker's thread had none of its own).
    recorded = events_since(mark, "order.placed", "stock.changed")
    assert {e.type for e in recorded} == {"order.placed", "stock.changed"}
    assert {e.request_id for e in recorded} == {request_id}
    assert [e.request_id for e in captured] == [request_id]
    lines = json_lines()
    access = [line for line in lines if line["logger"] == "creatorcommerce.access"]
    assert access[-1]["request_id"] == request_id
    assert access[-1] | {"duration_ms": 0} == {
        "ts": access[-1]["ts"],
        "level": "INFO",
        "logger": "creatorcommerce.access",
        "message": access[-1]["message"],
        "request_id": request_id,
        "method": "POST",
        "route": "api/v1/orders/",
        "status": 201,
        "duration_ms": 0,
    }
    handled = [line for line in lines if line.get("event") == str(placed.uuid) and CAPTURE in line["message"]]
    assert handled and handled[0]["request_id"] == request_id
    assert handled[0]["event_type"] == "order.placed" and handled[0]["message"].endswith(": applied")


@pytest.mark.django_db
def test_an_unusable_request_id_is_replaced_and_a_missing_one_made(client):
    made = client.get("/livez")["X-Request-ID"]
    assert len(made) == 32 and made != client.get("/livez")["X-Request-ID"]
    for bad in ("has space", "x" * 129, "semi;colon", "new\nline"):
        answered = client.get("/livez", HTTP_X_REQUEST_ID=bad)["X-Request-ID"]
        assert answered != bad and len(answered) == 32
    assert client.get("/livez", HTTP_X_REQUEST_ID="Root-1.abc:DEF_9")["X-Request-ID"] == "Root-1.abc:DEF_9"


def test_the_formats_name_the_bound_request_id():
    record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "hello %s", "args": ("you",)})
    assert RequestIdFilter().filter(record)
    assert json.loads(JsonFormatter().format(record)).keys() == {"ts", "level", "logger", "message"}
    with bound_request_id("abc-1"):
        record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "hello", "extra_field": 3})
        RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "abc-1" and line["extra_field"] == 3 and line["message"] == "hello"
    assert PlainFormatter("%(message)s").format(record) == "hello [request_id=abc-1]"
    assert accepted_request_id(b"abc-1") == "abc-1" and accepted_request_id("") is None


def test_a_worker_writes_json_lines_when_asked(settings):
    """Celery sets up its own loggers; with LOG_FORMAT=json their handlers get the JSON
    format and the request id (creatorcommerce/celery.py)."""
    from creatorcommerce.celery import _json_lines

    logger = logging.Logger("celery-like")
    logger.addHandler(logging.StreamHandler(io.StringIO()))
    _json_lines(logger=logger)
    assert not isinstance(logger.handlers[0].formatter, JsonFormatter)
    settings.LOG_FORMAT = "json"
    _json_lines(logger=logger)
    assert isinstance(logger.handlers[0].formatter, JsonFormatter)
