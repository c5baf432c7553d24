"""The media server's auth hook (MediaMTX ``authHTTPAddress``): the creator's encoder
publishes with the stream's ingest token, viewers read with their viewer token; anything
else is a 401 or 403 - never a 200, never a 500."""

from __future__ import annotations

import json
import secrets

import pytest

from apps.streams.services import stream_end
from apps.streams.tokens import viewer_token_issue

pytestmark = pytest.mark.django_db

HOOK = "/hooks/media/auth"
HOOK_SECRET = "test-media-hook-secret"
DENIED = (401, 403)


@pytest.fixture(autouse=True)
def _hook_secret(settings):
    settings.MEDIA_HOOK_SECRET = HOOK_SECRET


def client_address() -> str:
    """A fresh client address: failure counts live in the (maybe shared Redis) cache."""
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


def hook_body(**fields) -> dict:
    body = {
        "user": "",
        "password": "",
        "token": "",
        "ip": client_address(),
        "action": "publish",
        "path": "",
        "protocol": "rtmp",
        "id": None,
        "query": "",
    }
    body.update(fields)
    return body


def ask(client, body=None, raw=None, content_type="application/json", secret=HOOK_SECRET, **extra):
    data = raw if raw is not None else json.dumps(body)
    url = HOOK if secret is None else f"{HOOK}?secret={secret}"
    response = client.post(url, data, content_type=content_type, **{"REMOTE_ADDR": client_address(), **extra})
    assert response.status_code != 500
    return response


def viewer_token(stream, **kw) -> str:
    kw = {"user_id": None, "session_key": "some-session", "origin": "https://shop.example", **kw}
    return viewer_token_issue(stream_id=stream.pk, **kw)[0]


@pytest.fixture
def media_stream(live_stream):
    return live_stream


# -- allowed -------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["token", "password", "query"])
def test_publish_with_the_ingest_token(client, media_stream, where):
    secret = media_stream.ingest_token
    fields = {"query": f"token={secret}"} if where == "query" else {where: secret}
    response = ask(client, hook_body(action="publish", path=f"live/{media_stream.pk}", **fields))
    assert response.status_code == 200, response.content


def test_publish_to_a_scheduled_stream_is_allowed(client, scheduled_stream):
    """The encoder connects before the show goes live (a sound check)."""
    body = hook_body(action="publish", path=f"live/{scheduled_stream.pk}", token=scheduled_stream.ingest_token)
    assert ask(client, body).status_code == 200


@pytest.mark.parametrize("action", ["read", "playback"])
@pytest.mark.parametrize("where", ["token", "password", "query"])
def test_read_with_a_viewer_token(client, media_stream, action, where):
    token = viewer_token(media_stream)
    fields = {"query": f"token={token}"} if where == "query" else {where: token}
    response = ask(client, hook_body(action=action, path=f"live/{media_stream.pk}", protocol="hls", **fields))
    assert response.status_code == 200, response.content


def test_read_with_a_signed_in_viewers_token(client, media_stream, viewer):
    token = viewer_token(media_stream, user_id=viewer.pk, session_key=None)
    assert ask(client, hook_body(action="read", path=f"live/{media_stream.pk}", token=token)).status_code == 200


def test_read_with_a_token_from_the_api(client, media_stream):
    token = client.post(f"/api/v1/streams/{media_stream.pk}/viewer-token").json()["token"]
    body = hook_body(action="read", path=f"live/{media_stream.pk}", token=token)
    assert ask(client, body).status_code == 200


# -- denied --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "live/abc",
        "other/{id}",
        "live",
        "live/",
        "",
        "live/{id}/extra",
        "live/-{id}",
        "live/{id}x",
        "../live/{id}",
        # One canonical form only (docs/streams.md): these all named stream {id} before.
        "live/0{id}",
        "/live/{id}/",
        "/live/{id}",
        "live/{id}/",
        "live/{id}\n",
        "live/{id} ",
    ],
)
def test_wrong_paths_are_denied(client, media_stream, path):
    path = path.format(id=media_stream.pk)
    for body in (
        hook_body(action="publish", path=path, token=media_stream.ingest_token),
        hook_body(action="read", path=path, token=viewer_token(media_stream)),
    ):
        assert ask(client, body).status_code in DENIED


def test_ingest_token_of_one_stream_does_not_publish_to_another(client, creator, media_stream, make_stream):
    other = make_stream(creator.shop)
    body = hook_body(action="publish", path=f"live/{other.pk}", token=media_stream.ingest_token)
    assert ask(client, body).status_code in DENIED


def test_viewer_token_of_another_stream_does_not_read(client, creator, media_stream, make_stream):
    other = make_stream(creator.shop)
    body = hook_body(action="read", path=f"live/{media_stream.pk}", token=viewer_token(other))
    assert ask(client, body).status_code in DENIED


def test_unknown_stream_is_denied(client, media_stream):
    body = hook_body(action="publish", path="live/987654", token=media_stream.ingest_token)
    assert ask(client, body).status_code in DENIED


@pytest.mark.parametrize("action", ["api", "metrics", "pprof", "PUBLISH", "", None, 1])
def test_other_actions_are_denied_even_with_good_tokens(client, media_stream, action):
    for token in (media_stream.ingest_token, viewer_token(media_stream)):
        body = hook_body(action=action, path=f"live/{media_stream.pk}", token=token)
        assert ask(client, body).status_code in DENIED


def test_the_ingest_token_does_not_read_and_a_viewer_token_does_not_publish(client, media_stream):
    path = f"live/{media_stream.pk}"
    assert ask(client, hook_body(action="read", path=path, token=media_stream.ingest_token)).status_code in DENIED
    assert ask(client, hook_body(action="publish", path=path, token=viewer_token(media_stream))).status_code in DENIED


def test_wrong_ingest_token_is_denied(client, media_stream):
    path = f"live/{media_stream.pk}"
    for token in ("wrong", media_stream.ingest_token[:-1], media_stream.ingest_token + "x"):
        assert ask(client, hook_body(action="publish", path=path, token=token)).status_code in DENIED


def test_expired_viewer_token_is_denied(client, media_stream, settings):
    token = viewer_token(media_stream)
    settings.VIEWER_TOKEN_TTL_SECONDS = -1
    assert ask(client, hook_body(action="read", path=f"live/{media_stream.pk}", token=token)).status_code in DENIED


def test_tampered_viewer_token_is_denied(client, media_stream):
    token = viewer_token(media_stream)
    tampered = token[:-3] + ("xyz" if not token.endswith("xyz") else "abc")
    body = hook_body(action="read", path=f"live/{media_stream.pk}", token=tampered)
    assert ask(client, body).status_code in DENIED


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"token": "", "password": "", "query": ""},
        {"token": None, "password": None, "query": None},
        {"query": "token="},
        {"query": "other=1"},
        {"token": 123},
        {"token": ["x"]},
    ],
)
@pytest.mark.parametrize("action", ["publish", "read"])
def test_empty_or_odd_credentials_are_denied(client, media_stream, fields, action):
    assert ask(client, hook_body(action=action, path=f"live/{media_stream.pk}", **fields)).status_code in DENIED


def test_an_ended_stream_is_closed_to_everyone(client, media_stream):
    ingest, token = media_stream.ingest_token, viewer_token(media_stream)
    stream_end(stream=media_stream)
    path = f"live/{media_stream.pk}"
    assert ask(client, hook_body(action="publish", path=path, token=ingest)).status_code in DENIED
    assert ask(client, hook_body(action="read", path=path, token=token)).status_code in DENIED


@pytest.mark.parametrize("raw", ["[]", '"live/1"', "null", "42", "true", '[{"action": "publish"}]'])
def test_non_object_bodies_are_denied(client, media_stream, raw):
    assert ask(client, raw=raw).status_code in DENIED


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "{",
        "not json",
        '{"action": "publish", "path": "live/1", "token": ',
    ],
)
def test_malformed_json_is_denied(client, media_stream, raw):
    assert ask(client, raw=raw).status_code in DENIED


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_of_another_content_type_is_denied(client, media_stream, content_type):
    body = hook_body(action="publish", path=f"live/{media_stream.pk}", token="wrong")
    assert ask(client, body, content_type=content_type).status_code in DENIED


def test_wrong_types_for_path_are_denied(client, media_stream):
    for path in (None, 1, ["live", str(media_stream.pk)], {"live": media_stream.pk}):
        body = hook_body(action="publish", path=path, token=media_stream.ingest_token)
        assert ask(client, body).status_code in DENIED


def test_a_huge_stream_id_in_the_path_is_denied_not_a_crash(client, media_stream):
    for path in ("live/" + "9" * 18, "live/" + "9" * 19, "live/" + "9" * 400):
        body = hook_body(action="publish", path=path, token=media_stream.ingest_token)
        assert ask(client, body).status_code in DENIED


def test_denials_are_json_with_a_code(client, media_stream):
    response = ask(client, hook_body(action="publish", path=f"live/{media_stream.pk}", token="wrong"))
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    response = ask(client, hook_body(action="api", path=f"live/{media_stream.pk}", token="wrong"))
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


# -- the media server authenticates itself; guessing is limited, not playback -----------------


def test_many_viewers_reading_through_one_media_server_are_not_throttled(client, media_stream, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "anon": "5/min"},
    }
    body = hook_body(action="read", path=f"live/{media_stream.pk}", token=viewer_token(media_stream))
    statuses = [ask(client, body, REMOTE_ADDR="10.9.8.7").status_code for _ in range(30)]
    assert statuses == [200] * 30


@pytest.mark.parametrize("secret", [None, "", "wrong", HOOK_SECRET + "x"])
def test_a_caller_without_the_hook_secret_is_refused(client, media_stream, secret):
    body = hook_body(action="publish", path=f"live/{media_stream.pk}", token=media_stream.ingest_token)
    response = ask(client, body, secret=secret)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert ask(client, body).status_code == 200


def test_without_a_configured_secret_production_refuses_and_debug_allows(client, media_stream, settings):
    settings.MEDIA_HOOK_SECRET = ""
    body = hook_body(action="publish", path=f"live/{media_stream.pk}", token=media_stream.ingest_token)
    settings.DEBUG = False
    response = ask(client, body, secret=None)
    assert response.status_code == 503
    assert response.json()["code"] == "media_hook_not_configured"
    settings.DEBUG = True
    assert ask(client, body, secret=None).status_code == 200


def test_wrong_ingest_tokens_are_limited_per_publishing_address(client, media_stream, settings):
    settings.MEDIA_HOOK_FAILURES_PER_10MIN = 3
    guesser, creator = client_address(), client_address()
    path = f"live/{media_stream.pk}"
    for _ in range(3):
        assert ask(client, hook_body(action="publish", path=path, token="guess", ip=guesser)).status_code == 401
    right = hook_body(action="publish", path=path, token=media_stream.ingest_token, ip=guesser)
    response = ask(client, right)
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    # The creator's encoder elsewhere, and viewers, are not locked out by the guesser.
    assert ask(client, {**right, "ip": creator}).status_code == 200
    read = hook_body(action="read", path=path, token=viewer_token(media_stream), ip=guesser)
    assert ask(client, read).status_code == 200


def test_wrong_hook_secrets_are_limited_per_calling_address(client, media_stream, settings):
    settings.MEDIA_HOOK_FAILURES_PER_10MIN = 3
    caller = client_address()
    body = hook_body(action="publish", path=f"live/{media_stream.pk}", token=media_stream.ingest_token)
    for _ in range(3):
        assert ask(client, body, secret="guess", REMOTE_ADDR=caller).status_code == 401
    assert ask(client, body, secret="guess", REMOTE_ADDR=caller).status_code == 429
    # The right secret is never locked out, even from the guesser's address (a shared NAT).
    assert ask(client, body, REMOTE_ADDR=caller).status_code == 200
    assert ask(client, body).status_code == 200  # the media server, from its own address


def test_behind_a_trusted_proxy_wrong_secrets_count_per_caller_not_per_proxy(client, media_stream, settings):
    """Behind a proxy every caller arrives from the proxy's address: guesses are counted for
    the address the proxy forwarded (TRUSTED_PROXIES), so one guesser does not lock out the
    media server behind the same proxy, and a forged X-Forwarded-For from elsewhere is ignored."""
    settings.MEDIA_HOOK_FAILURES_PER_10MIN = 3
    settings.TRUSTED_PROXIES = ["10.9.8.7"]
    guesser, media_server = client_address(), client_address()
    body = hook_body(action="publish", path=f"live/{media_stream.pk}", token=media_stream.ingest_token)
    via_proxy = {"REMOTE_ADDR": "10.9.8.7"}
    for _ in range(3):
        response = ask(client, body, secret="guess", HTTP_X_FORWARDED_FOR=guesser, **via_proxy)
        assert response.status_code == 401
    assert ask(client, body, secret="guess", HTTP_X_FORWARDED_FOR=guesser, **via_proxy).status_code == 429
    assert ask(client, body, secret="guess", HTTP_X_FORWARDED_FOR=media_server, **via_proxy).status_code == 401
    # Not from the proxy: X-Forwarded-For is the caller's own claim and does not count.
    direct = client_address()
    for _ in range(3):
        assert ask(client, body, secret="guess", REMOTE_ADDR=direct, HTTP_X_FORWARDED_FOR=guesser).status_code == 401
    forged = ask(client, body, secret="guess", REMOTE_ADDR=direct, HTTP_X_FORWARDED_FOR=media_server)
    assert forged.status_code == 429


def test_deeply_nested_json_is_a_denial_not_a_crash(client, media_stream):
    # The request guard (creatorcommerce/guard.py) answers 400 malformed_json before the hook
    # parses anything: MediaMTX denies on any answer but 200.
    for raw in ("[" * 2000, '{"a":' * 1000 + "1" + "}" * 1000):
        response = ask(client, raw=raw)
        assert response.status_code == 400
        assert response.json()["code"] == "malformed_json"
