"""Against a real daphne: a request with an oversized header answers 431 JSON instead of a
dropped connection (creatorcommerce/twisted_http.py)."""

from __future__ import annotations

import json
import os
import socket

import pytest

from tests.helpers import WAIT
from tests.servers import daphne


@pytest.fixture(scope="module")
def daphne_port(tmp_path_factory):
    env = {
        **os.environ,
        # No request here reaches the database; a file of its own keeps it away from others'.
        "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('daphne') / 'unused.sqlite3'}",
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "EMBEDDED_SCHEDULER": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    with daphne(env, tmp_path_factory.mktemp("daphne-log") / "daphne.log") as server:
        yield server.port


def _exchange(port: int, head: str, body: bytes = b"") -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(head.encode() + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received, "the server closed the connection without an answer"
    status_line, _, rest = received.partition(b"\r\n")
    headers_blob, _, payload = rest.partition(b"\r\n\r\n")
    headers = dict(line.decode().split(": ", 1) for line in headers_blob.split(b"\r\n") if b": " in line)
    return int(status_line.split()[1]), headers, payload


def _post_orders(extra_headers: str) -> str:
    return (
        "POST /api/v1/orders/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: 2\r\nConnection: close\r\n{extra_headers}\r\n"
    )


def test_a_20000_character_idempotency_key_is_a_431(daphne_port):
    status, headers, payload = _exchange(daphne_port, _post_orders(f"Idempotency-Key: {'k' * 20000}\r\n"), b"{}")
    assert status == 431
    assert headers["Content-Type"] == "application/json"
    assert json.loads(payload)["code"] == "headers_too_large"


def test_headers_over_16_kb_in_total_are_a_431(daphne_port):
    many = "".join(f"X-Filler-{i}: {'v' * 4000}\r\n" for i in range(5))
    status, _, payload = _exchange(daphne_port, _post_orders(many), b"{}")
    assert status == 431
    assert json.loads(payload)["code"] == "headers_too_large"


def test_a_request_line_that_is_not_http_is_a_json_400(daphne_port):
    status, _, payload = _exchange(daphne_port, "NONSENSE\r\n\r\n")
    assert status == 400
    assert json.loads(payload)["code"] == "bad_request"


def test_ordinary_requests_are_served(daphne_port):
    status, _, payload = _exchange(daphne_port, "GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert status == 200
    assert json.loads(payload) == {"status": "ok"}


def _post(path: str, content_type: str, body: bytes) -> str:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )


def test_twisted_leaves_form_bodies_to_the_application(daphne_port):
    """Twisted no longer parses POST forms (creatorcommerce/twisted_http.py): a multipart body
    it could not parse used to be its own bare 400, before the application saw it; now the
    API answers, in its own words (no session: 401/403 with the API's code)."""
    body = b"this is not multipart at all"
    status, headers, payload = _exchange(
        daphne_port, _post("/api/v1/orders/", "multipart/form-data; boundary=zzz", body), body
    )
    assert headers["Content-Type"] == "application/json"
    assert (status, json.loads(payload)["code"]) in ((401, "not_authenticated"), (403, "not_authenticated"))
