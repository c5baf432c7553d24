"""The streams API over HTTP: public reads, viewer tokens, the creator's live controls, and
bad input (a 4xx with a code, and nothing written)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.catalog.models import StockLevel
from apps.streams.exceptions import InvalidViewerToken
from apps.streams.models import FlashDeal, Pin, Stream
from apps.streams.services import stream_end
from apps.streams.tokens import viewer_token_check
from creatorcommerce.spine.models import OutboxEvent
from tests.factories import make_sku
from tests.helpers import last_event_id

pytestmark = pytest.mark.django_db

STREAM_KEYS = {"id", "title", "creator", "status", "starts_at", "pins"}
PIN_KEYS = {"sku", "title", "price", "available", "deal"}
DEAL_KEYS = {"price", "ends_at", "per_buyer_limit", "remaining"}


def url(stream_or_id, action=""):
    pk = getattr(stream_or_id, "pk", stream_or_id)
    return f"/api/v1/streams/{pk}/{action}"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_json(client, path, body=None, raw=None):
    data = raw if raw is not None else json.dumps(body if body is not None else {})
    return client.post(path, data, content_type="application/json")


def assert_error(response, status, code=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("code"), str) and body["code"] and isinstance(body.get("message"), str)
    if code is not None:
        assert body["code"] == code, body
    return body


# -- public reads --------------------------------------------------------------------------


def test_list_by_status(client, live_stream, scheduled_stream, creator, make_stream):
    ended = make_stream(creator.shop, title="Last week")
    stream_end(stream=ended)

    live = client.get("/api/v1/streams/?status=live")
    assert live.status_code == 200
    assert [s["id"] for s in live.json()] == [live_stream.pk]

    scheduled = client.get("/api/v1/streams/?status=scheduled")
    assert [s["id"] for s in scheduled.json()] == [scheduled_stream.pk]

    both = client.get("/api/v1/streams/")
    assert {s["id"] for s in both.json()} == {live_stream.pk, scheduled_stream.pk}
    for body in both.json():
        assert body.keys() >= STREAM_KEYS


@pytest.mark.parametrize("status", ["ended", "LIVE", "bogus", "live,scheduled"])
def test_list_with_a_bad_status_is_400(client, live_stream, status):
    body = assert_error(client.get("/api/v1/streams/", {"status": status}), 400)
    assert body["errors"]["status"][0]["code"] == "invalid_status"


def test_detail_has_the_contract_shape(client, live_stream, open_deal, deal_sku, plain_sku, creator):
    response = client.get(url(live_stream))
    assert response.status_code == 200
    body = response.json()
    assert body.keys() >= STREAM_KEYS
    assert body["id"] == live_stream.pk
    assert body["title"] == "Live now"
    assert body["creator"] == creator.shop.name
    assert body["status"] == "live"
    assert parse_datetime(body["starts_at"]) == live_stream.starts_at

    assert [p["sku"] for p in body["pins"]] == [deal_sku.code, plain_sku.code]
    with_deal, without = body["pins"]
    assert with_deal.keys() >= PIN_KEYS and without.keys() >= PIN_KEYS
    assert with_deal["title"] == deal_sku.display_title
    assert with_deal["price"] == "20.00" and with_deal["available"] == 25
    assert with_deal["deal"].keys() >= DEAL_KEYS
    assert with_deal["deal"]["price"] == "12.00"
    assert with_deal["deal"]["per_buyer_limit"] == 2
    assert with_deal["deal"]["remaining"] == 5
    assert parse_datetime(with_deal["deal"]["ends_at"]) == open_deal.closes_at
    assert without["deal"] is None and without["price"] == "5.00" and without["available"] == 10


def test_unknown_stream_is_a_404_json(client):
    assert_error(client.get(url(987654)), 404, "stream_not_found")


# -- viewer tokens -------------------------------------------------------------------------


def test_anonymous_viewer_token_creates_a_session_and_is_bound_to_it(client, live_stream, scheduled_stream):
    before = timezone.now()
    response = client.post(url(live_stream, "viewer-token"), headers={"Origin": "https://shop.example"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) >= {"token", "expires_at"}
    expires = parse_datetime(body["expires_at"])
    assert before < expires <= timezone.now() + timedelta(seconds=300)

    session_key = client.session.session_key
    assert session_key and client.cookies["sessionid"].value == session_key

    token = body["token"]
    claims = viewer_token_check(token=token, stream_id=live_stream.pk, user_id=None, session_key=session_key)
    assert claims.origin == "https://shop.example"
    with pytest.raises(InvalidViewerToken):
        viewer_token_check(token=token, stream_id=scheduled_stream.pk, user_id=None, session_key=session_key)
    with pytest.raises(InvalidViewerToken):
        viewer_token_check(token=token, stream_id=live_stream.pk, user_id=None, session_key="another-session-key")
    with pytest.raises(InvalidViewerToken):
        viewer_token_check(token=token, stream_id=live_stream.pk, user_id=None, session_key=None)

    # The same browser asking again keeps its session.
    again = client.post(url(live_stream, "viewer-token"))
    assert again.status_code == 200 and client.session.session_key == session_key


def test_signed_in_viewer_token_is_bound_to_the_user(live_stream, scheduled_stream, viewer, buyer):
    client = signed_in(viewer)
    response = client.post(url(live_stream, "viewer-token"))
    assert response.status_code == 200
    token = response.json()["token"]
    viewer_token_check(token=token, stream_id=live_stream.pk, user_id=viewer.pk, session_key=None)
    viewer_token_check(token=token, stream_id=live_stream.pk, user_id=viewer.pk, session_key="any-other-session")
    for stream_id, user_id in [(scheduled_stream.pk, viewer.pk), (live_stream.pk, buyer.pk), (live_stream.pk, None)]:
        with pytest.raises(InvalidViewerToken):
            viewer_token_check(token=token, stream_id=stream_id, user_id=user_id, session_key=None)


def _readable(token: str) -> str:
    """Whatever text anyone can recover from a token without a key: each part base64-decoded,
    and inflated when it is zlib data (what django.core.signing's ``compress`` makes)."""
    import base64
    import contextlib
    import zlib

    out = [token]
    for part in token.replace(":", ".").split("."):
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except ValueError:
            continue
        out.append(raw.decode("latin-1"))
        with contextlib.suppress(zlib.error):
            out.append(zlib.decompress(raw).decode("latin-1"))
    return "\n".join(out)


def test_a_viewer_token_is_opaque_but_still_bound(client, live_stream, viewer):
    """Tokens reach access logs (the socket's URL, the media server's ?token=): nothing of the
    viewer can be read from one, and it still opens only this stream for this viewer."""
    origin = "https://shop.example"
    anon = client.post(url(live_stream, "viewer-token"), HTTP_ORIGIN=origin).json()["token"]
    key = client.session.session_key
    text = _readable(anon)
    assert key not in text and origin not in text and "shop.example" not in text
    claims = viewer_token_check(token=anon, stream_id=live_stream.pk, user_id=None, session_key=key)
    assert claims.origin == origin

    client.force_login(viewer)
    signed_in = client.post(url(live_stream, "viewer-token"), HTTP_ORIGIN=origin).json()["token"]
    text = _readable(signed_in)
    assert f'"u":{viewer.pk}' not in text and f'"u": {viewer.pk}' not in text and origin not in text
    assert viewer_token_check(token=signed_in, stream_id=live_stream.pk, user_id=viewer.pk, session_key=None)
    with pytest.raises(InvalidViewerToken):
        viewer_token_check(token=signed_in, stream_id=live_stream.pk, user_id=viewer.pk + 1, session_key=None)


def test_tampered_or_expired_viewer_token_is_refused(client, live_stream, settings):
    token = client.post(url(live_stream, "viewer-token")).json()["token"]
    key = client.session.session_key
    for bad in ("", None, token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "not-a-token"):
        with pytest.raises(InvalidViewerToken):
            viewer_token_check(token=bad, stream_id=live_stream.pk, user_id=None, session_key=key)
    settings.VIEWER_TOKEN_TTL_SECONDS = -1
    with pytest.raises(InvalidViewerToken):
        viewer_token_check(token=token, stream_id=live_stream.pk, user_id=None, session_key=key)


def test_viewer_token_for_an_unknown_stream_is_404(client):
    assert_error(client.post(url(987654, "viewer-token")), 404, "stream_not_found")


# -- creator controls ----------------------------------------------------------------------


@pytest.fixture
def control_setup(creator, scheduled_stream, make_deal):
    """A scheduled stream with one pinned SKU, one unpinned SKU and a deal opening later."""
    from apps.streams.services import pin_add

    pinned = make_sku(creator.shop, code="PINNED", stock=10)
    loose = make_sku(creator.shop, code="LOOSE", stock=10)
    pin_add(stream=scheduled_stream, sku=pinned)
    deal = make_deal(
        scheduled_stream,
        pinned,
        opens_at=timezone.now() + timedelta(minutes=30),
        closes_at=timezone.now() + timedelta(hours=2),
        quantity=4,
    )
    return scheduled_stream, pinned, loose, deal


CONTROLS = [
    ("start", "post", "start", None),
    ("end", "post", "end", None),
    ("pin", "post", "pins/", {"sku": "LOOSE"}),
    ("unpin", "delete", "pins/PINNED/", None),
    ("deal-open", "post", "deals/{deal}/open", None),
    ("deal-close", "post", "deals/{deal}/close", None),
]


def call_control(client, stream, deal, method, action, body):
    path = url(stream, action.format(deal=deal.pk))
    if method == "delete":
        return client.delete(path)
    return post_json(client, path, body)


def state_of(stream, deal):
    stream.refresh_from_db()
    deal.refresh_from_db()
    pins = list(Pin.objects.filter(stream=stream).values_list("sku__code", flat=True))
    return stream.status, pins, deal.status, deal.remaining, deal.opens_at


@pytest.mark.parametrize("name, method, action, body", CONTROLS, ids=[c[0] for c in CONTROLS])
@pytest.mark.parametrize("who", ["other_creator", "viewer", "buyer"])
def test_controls_refuse_other_users_with_403(request, control_setup, who, name, method, action, body):
    stream, _, _, deal = control_setup
    client = signed_in(request.getfixturevalue(who))
    before, mark = state_of(stream, deal), last_event_id()
    response = call_control(client, stream, deal, method, action, body)
    assert_error(response, 403, "permission_denied")
    assert state_of(stream, deal) == before
    assert last_event_id() == mark


@pytest.mark.parametrize("name, method, action, body", CONTROLS, ids=[c[0] for c in CONTROLS])
def test_controls_refuse_anonymous_users(client, control_setup, name, method, action, body):
    stream, _, _, deal = control_setup
    before, mark = state_of(stream, deal), last_event_id()
    response = call_control(client, stream, deal, method, action, body)
    assert response.status_code in (401, 403)
    assert_error(response, response.status_code)
    assert state_of(stream, deal) == before
    assert last_event_id() == mark


@pytest.mark.parametrize("who", ["creator", "staff_user"])
def test_owner_and_staff_run_the_show(request, control_setup, who):
    stream, _, _, deal = control_setup
    client = signed_in(request.getfixturevalue(who))

    started = post_json(client, url(stream, "start"))
    assert started.status_code == 200, started.content
    assert started.json()["status"] == "live"
    assert OutboxEvent.objects.filter(type="stream.started", payload__stream=stream.pk).count() == 1

    pins = post_json(client, url(stream, "pins/"), {"sku": "LOOSE"})
    assert pins.status_code == 200
    assert [p["sku"] for p in pins.json()["pins"]] == ["PINNED", "LOOSE"]
    again = post_json(client, url(stream, "pins/"), {"sku": "LOOSE", "position": 0})
    assert [p["sku"] for p in again.json()["pins"]] == ["PINNED", "LOOSE"]  # pinned already: unchanged

    front = post_json(client, url(stream, "pins/"), {"sku": make_sku(stream.shop, code="NEW").code, "position": 0})
    assert [p["sku"] for p in front.json()["pins"]] == ["NEW", "PINNED", "LOOSE"]

    unpinned = client.delete(url(stream, "pins/LOOSE/"))
    assert unpinned.status_code == 200
    assert [p["sku"] for p in unpinned.json()["pins"]] == ["NEW", "PINNED"]

    opened = post_json(client, url(stream, f"deals/{deal.pk}/open"))
    assert opened.status_code == 200
    pin = next(p for p in opened.json()["pins"] if p["sku"] == "PINNED")
    assert pin["deal"]["remaining"] == 4 and pin["deal"]["price"] == "12.00" and pin["available"] == 6
    deal.refresh_from_db()
    assert deal.status == FlashDeal.Status.OPEN
    assert deal.opens_at <= timezone.now()  # opened by hand: its window starts now

    closed = post_json(client, url(stream, f"deals/{deal.pk}/close"))
    assert closed.status_code == 200
    pin = next(p for p in closed.json()["pins"] if p["sku"] == "PINNED")
    assert pin["deal"] is None and pin["available"] == 10

    ended = post_json(client, url(stream, "end"))
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    assert_error(post_json(client, url(stream, "start")), 409, "invalid_stream_transition")
    stream.refresh_from_db()
    assert stream.status == Stream.Status.ENDED


def test_ending_a_live_stream_over_http_gives_deal_units_back(creator, live_stream, open_deal, deal_sku):
    response = post_json(signed_in(creator), url(live_stream, "end"))
    assert response.status_code == 200
    open_deal.refresh_from_db()
    assert open_deal.status == FlashDeal.Status.CLOSED
    assert StockLevel.objects.get(sku=deal_sku).available == 30


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"sku": 5}, 400, "invalid"),
        ({"sku": ["LOOSE"]}, 400, "invalid"),
        ({"sku": None}, 400, "invalid"),
        ({}, 400, "invalid"),
        ({"sku": "LOOSE", "position": "1"}, 400, "invalid"),
        ({"sku": "LOOSE", "position": True}, 400, "invalid"),
        ({"sku": "LOOSE", "position": -1}, 400, "invalid"),
        ({"sku": "LOOSE", "position": 1.5}, 400, "invalid"),
        ({"sku": "NOPE"}, 404, "sku_not_found"),
        ({"sku": "FOREIGN"}, 404, "sku_not_found"),
        (["LOOSE"], 400, None),
        ("LOOSE", 400, None),
    ],
)
def test_bad_pin_bodies_are_4xx_and_write_nothing(creator, other_creator, control_setup, body, status, code):
    stream, _, _, deal = control_setup
    make_sku(other_creator.shop, code="FOREIGN")
    before, mark = state_of(stream, deal), last_event_id()
    assert_error(post_json(signed_in(creator), url(stream, "pins/"), body), status, code)
    assert state_of(stream, deal) == before
    assert last_event_id() == mark


@pytest.mark.parametrize("raw", ["{", "", "null", '{"sku": "LOOSE"'])
def test_malformed_pin_json_is_400(creator, control_setup, raw):
    stream, _, _, deal = control_setup
    before = state_of(stream, deal)
    response = post_json(signed_in(creator), url(stream, "pins/"), raw=raw)
    assert_error(response, 400)
    assert state_of(stream, deal) == before


def test_unknown_things_in_control_urls_are_404(creator, other_creator, control_setup, make_stream, make_deal):
    stream, pinned, _, _ = control_setup
    client = signed_in(creator)
    assert_error(client.delete(url(stream, "pins/NOPE/")), 404, "sku_not_found")
    assert_error(post_json(client, url(stream, "deals/987654/open")), 404, "deal_not_found")
    assert_error(post_json(client, url(987654, "start")), 404, "stream_not_found")
    # A deal of another stream, even the creator's own, is not found through this one.
    other_stream = make_stream(creator.shop, title="Other")
    foreign_deal = make_deal(other_stream, pinned)
    assert_error(post_json(client, url(stream, f"deals/{foreign_deal.pk}/open")), 404, "deal_not_found")
    foreign_deal.refresh_from_db()
    assert foreign_deal.status == FlashDeal.Status.SCHEDULED
    # Another shop's stream is refused, not opened.
    their_stream = make_stream(other_creator.shop)
    assert_error(post_json(client, url(their_stream, "start")), 403, "permission_denied")
    their_stream.refresh_from_db()
    assert their_stream.status == Stream.Status.SCHEDULED


def test_unpinning_what_is_not_pinned_answers_200_and_sends_nothing(creator, control_setup):
    stream, *_ = control_setup
    mark = last_event_id()
    response = signed_in(creator).delete(url(stream, "pins/LOOSE/"))
    assert response.status_code == 200
    assert last_event_id() == mark


def test_opening_a_deal_before_the_stream_is_live_is_409(creator, scheduled_stream, deal_sku, make_deal):
    deal = make_deal(scheduled_stream, deal_sku)
    client = signed_in(creator)
    response = client.post(f"/api/v1/streams/{scheduled_stream.pk}/deals/{deal.pk}/open")
    assert response.status_code == 409 and response.json()["code"] == "stream_not_live"
    deal.refresh_from_db()
    assert deal.status == "scheduled"


def test_anonymous_viewer_tokens_are_rate_limited(live_stream, settings):
    from django.core.cache import cache

    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "anon": "3/min"},
    }
    client = Client()
    codes = [client.post(f"/api/v1/streams/{live_stream.pk}/viewer-token").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    cache.clear()


def test_stream_list_queries_do_not_grow_with_streams(django_assert_max_num_queries, creator, make_stream, deal_sku):
    from apps.streams.services import pin_add

    for i in range(12):
        stream = make_stream(creator.shop, title=f"S{i}")
        pin_add(stream=stream, sku=deal_sku)
    with django_assert_max_num_queries(6):
        response = Client().get("/api/v1/streams/")
    assert response.status_code == 200 and len(response.json()) == 12
