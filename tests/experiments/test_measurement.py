"""Measurement (docs/experiments.md, "Measurement"): client events (exposures and errors)
through ``POST /api/v1/client-events/``, refused whole with a code when bad; conversions from
real buys by exposed viewers; the conversion guardrail on the aggregates."""

from __future__ import annotations

import itertools
import time

import pytest
from django.conf import settings

from apps.experiments.assignment import spec_of
from apps.experiments.models import Assignment, Experiment, Exposure, VariantStats
from apps.experiments.services import client_events_record, conversion_record, guardrails_evaluate
from apps.orders.services import order_place, request_fingerprint
from creatorcommerce.spine.models import OutboxEvent
from creatorcommerce.spine.tasks import apply_handler
from tests.factories import make_buyer

pytestmark = pytest.mark.django_db

URL = "/api/v1/client-events/"
_keys = itertools.count()


def _exposure(stream, variant="confetti", slot="purchase_confirmation"):
    return {"kind": "exposure", "stream": stream.pk, "slot": slot, "variant": variant}


def _stats(experiment) -> dict:
    return {
        s.variant: (s.exposures, s.conversions, s.errors) for s in VariantStats.objects.filter(experiment=experiment)
    }


def _nothing_stored(experiment, mark):
    assert not Assignment.objects.exists() and not Exposure.objects.exists()
    assert set(_stats(experiment).values()) == {(0, 0, 0)}
    assert not OutboxEvent.objects.filter(
        pk__gt=mark, type__in=["experiment.exposed", "client_error.reported"]
    ).exists()


@pytest.mark.parametrize(
    "body, code, index, field",
    [
        ([], "invalid_batch", None, None),
        ({"events": [], "extra": 1}, "invalid_batch", None, None),
        ({"events": {}}, "invalid_batch", None, "events"),
        ({"events": []}, "no_events", None, "events"),
        ({"events": ["x"]}, "invalid_event", 0, None),
        ({"events": "E" * 101}, "too_many_events", None, "events"),
        ({"events": [{"kind": "exposure"}] * 101}, "too_many_events", None, "events"),
        ({"events": [{"kind": "click", "stream": "S"}]}, "invalid_kind", 0, "kind"),
        ({"events": [{"kind": "error", "stream": "1"}]}, "invalid_stream", 0, "stream"),
        ({"events": [{"kind": "error", "stream": True}]}, "invalid_stream", 0, "stream"),
        ({"events": [{"kind": "error", "stream": "S", "who": 1}]}, "unknown_field", 0, "who"),
        ({"events": ["OK", {"kind": "error", "stream": "S", "slot": "nope"}]}, "invalid_slot", 1, "slot"),
        ({"events": [{"kind": "exposure", "stream": "S", "variant": "confetti"}]}, "missing_field", 0, "slot"),
        (
            {"events": [{"kind": "exposure", "stream": "S", "slot": "purchase_confirmation"}]},
            "missing_field",
            0,
            "variant",
        ),
        (
            {"events": [{"kind": "exposure", "stream": "S", "slot": "purchase_confirmation", "variant": "off"}]},
            "invalid_variant",
            0,
            "variant",
        ),
        ({"events": [{"kind": "error", "stream": "S", "variant": "x" * 33}]}, "invalid_variant", 0, "variant"),
        ({"events": [{"kind": "error", "stream": "S", "message": "m" * 501}]}, "invalid_message", 0, "message"),
        ({"events": [{"kind": "error", "stream": "S", "message": 5}]}, "invalid_message", 0, "message"),
        ({"events": [{"kind": "error", "stream": "S", "at": "2026-12-05T10:00:00"}]}, "invalid_at", 0, "at"),
        ({"events": [{"kind": "error", "stream": "S", "at": "3026-12-05T10:00:00Z"}]}, "invalid_at", 0, "at"),
        ({"events": [{"kind": "error", "stream": "S", "at": "yesterday"}]}, "invalid_at", 0, "at"),
        ({"events": [{"kind": "error", "stream": 999_999_999}]}, "unknown_stream", 0, "stream"),
    ],
)
def test_bad_client_events_are_refused_whole_with_a_code(
    api_client, stream_setup, make_experiment, body, code, index, field
):
    stream = stream_setup["stream"]
    experiment = make_experiment(stream_setup["creator"])
    mark = OutboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    def fill(value):
        if value == "S":
            return stream.pk
        if value == "OK":
            return _exposure(stream)  # a good event first: still nothing of the batch is stored
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        if value == "E" * 101:
            return [_exposure(stream)] * 101
        return value

    response = api_client.post(URL, fill(body), format="json")
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["code"] == code
    assert answer.get("index") == index and answer.get("field") == field
    _nothing_stored(experiment, mark)


def test_malformed_json_is_a_400_with_a_code(api_client, stream_setup, make_experiment):
    experiment = make_experiment(stream_setup["creator"])
    response = api_client.post(URL, b"{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "malformed_request"
    _nothing_stored(experiment, 0)


def test_client_events_are_rate_limited_per_client(api_client, stream_setup, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "client_events": "3/min"},
    }
    api_client.force_authenticate(make_buyer())
    body = {"events": [{"kind": "error", "stream": stream_setup["stream"].pk, "message": "x"}]}
    answers = [api_client.post(URL, body, format="json").status_code for _ in range(4)]
    assert answers == [202, 202, 202, 429]
    last = api_client.post(URL, body, format="json")
    assert last.json()["code"] == "rate_limited" and "Retry-After" in last.headers


def test_exposures_count_once_per_viewer_and_only_for_their_variant(stream_setup, make_experiment):
    stream = stream_setup["stream"]
    experiment = make_experiment(stream_setup["creator"])
    spec = spec_of(experiment)
    mine = spec.hashed("u:501", time.time())
    theirs = "control" if mine == "confetti" else "confetti"
    counted = client_events_record(
        user_id=501,
        session_key=None,
        events=[
            _exposure(stream, theirs),  # not what this viewer was given: ignored
            _exposure(stream, mine),
            _exposure(stream, mine),  # again: the viewer is counted once
            _exposure(stream, "off", slot="badge_pops"),  # no experiment runs on the slot
            {"kind": "error", "stream": stream.pk, "slot": None, "variant": None, "message": "boom"},
        ],
    )
    assert counted == {"exposures": 2, "errors": 1, "ignored": 2}
    assert _stats(experiment)[mine] == (1, 0, 0) and _stats(experiment)[theirs] == (0, 0, 0)
    assert list(Assignment.objects.values_list("viewer", "variant")) == [("u:501", mine)]
    exposed = OutboxEvent.objects.filter(type="experiment.exposed")
    assert [e.payload for e in exposed] == [
        {
            "experiment": experiment.pk,
            "shop": experiment.shop_id,
            "slot": "purchase_confirmation",
            "variant": mine,
            "stream": stream.pk,
        }
    ]
    error = OutboxEvent.objects.get(type="client_error.reported")
    assert error.payload == {
        "stream": stream.pk,
        "shop": experiment.shop_id,
        "slot": None,
        "variant": None,
        "experiment": None,
        "message": "boom",
    }
    assert "501" not in str(error.payload) and "501" not in str(exposed[0].payload)  # no viewer in events


def _buy(buyer, stream, sku="PIN-0"):
    key = f"exp-{next(_keys)}"
    outcome = order_place(
        buyer=buyer,
        sku_code=sku,
        idempotency_key=key,
        fingerprint=request_fingerprint({"sku": sku, "key": key, "stream_id": stream.pk}),
        stream_id=stream.pk,
    )
    assert outcome.status == 201, outcome.body
    event = OutboxEvent.objects.get(type="order.placed", payload__order=outcome.order.pk)
    apply_handler(event.pk, "apps.experiments.handlers.conversions_on_order_placed")
    return outcome.order


def test_orders_of_exposed_viewers_in_the_stream_convert_their_variant_once(
    stream_setup, make_experiment, make_stream_of
):
    stream = stream_setup["stream"]
    experiment = make_experiment(stream_setup["creator"])
    spec = spec_of(experiment)
    exposed, unexposed = make_buyer(), make_buyer()
    variant = spec.hashed(f"u:{exposed.pk}", time.time())
    client_events_record(user_id=exposed.pk, session_key=None, events=[_exposure(stream, variant)])

    order = _buy(exposed, stream)
    _buy(exposed, stream)  # a second order: the viewer converted already
    _buy(unexposed, stream)  # never exposed: not counted
    other_stream = make_stream_of(stream_setup)
    _buy(make_buyer(), other_stream)
    assert _stats(experiment)[variant] == (1, 1, 0)
    assert sum(c for _, c, _ in _stats(experiment).values()) == 1
    converted = OutboxEvent.objects.filter(type="experiment.converted")
    assert [e.payload for e in converted] == [
        {
            "experiment": experiment.pk,
            "shop": experiment.shop_id,
            "slot": "purchase_confirmation",
            "variant": variant,
            "stream": stream.pk,
            "order": order.pk,
        }
    ]


@pytest.fixture
def make_stream_of(db):
    def _make(setup):
        from apps.streams.models import Stream
        from apps.streams.services import pin_add, stream_start

        stream = Stream.objects.create(shop=setup["shop"], title="Another", starts_at=stream_setup_now())
        stream_start(stream=stream)
        pin_add(stream=stream, sku=setup["skus"][0])
        return stream

    return _make


def stream_setup_now():
    from django.utils import timezone

    return timezone.now()


def _run(experiment, stream, *, viewers, rates, start=10_000):
    """``viewers`` exposed viewers (their hashed variants), converting at ``rates[variant]``
    (every k-th viewer of the arm, deterministic), through the services."""
    spec = spec_of(experiment)
    seen = dict.fromkeys(spec.keys, 0)
    for uid in range(start, start + viewers):
        variant = spec.hashed(f"u:{uid}", time.time())
        client_events_record(user_id=uid, session_key=None, events=[_exposure(stream, variant)])
        seen[variant] += 1
        if seen[variant] % round(1 / rates[variant]) == 0:
            conversion_record(payload={"stream": stream.pk, "buyer": uid, "order": uid}, at=stream_setup_now())


def test_a_conversion_drop_rolls_the_experiment_back(stream_setup, make_experiment):
    stream = stream_setup["stream"]
    experiment = make_experiment(stream_setup["creator"])
    _run(experiment, stream, viewers=400, rates={"control": 0.25, "confetti": 0.05})
    assert guardrails_evaluate() == [experiment.pk]
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.ROLLED_BACK
    assert experiment.reason.startswith("Rolled back by the guardrail (conversion_drop)")
    event = OutboxEvent.objects.get(type="experiment.rolled_back")
    assert event.payload["reason"] == "conversion_drop" and f"stream.{stream.pk}" in event.groups


def test_equal_rates_do_not_roll_back(stream_setup, make_experiment):
    stream = stream_setup["stream"]
    experiment = make_experiment(stream_setup["creator"])
    _run(experiment, stream, viewers=400, rates={"control": 0.1, "confetti": 0.1})
    for _ in range(3):  # looked at again and again: nothing new, nothing trips
        assert guardrails_evaluate() == []
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.RUNNING
    assert experiment.guardrail["verdict"] == "ok" and experiment.guardrail["checks"]["confetti"]["p_value"] > 0.05
    assert settings.EXPERIMENT_GUARDRAIL_ALPHA == 0.05


def test_errors_count_once_per_exposed_viewer(stream_setup, make_experiment):
    stream = stream_setup["stream"]
    experiment = make_experiment(stream_setup["creator"])
    variant = spec_of(experiment).hashed("u:601", time.time())
    error = {
        "kind": "error",
        "stream": stream.pk,
        "slot": "purchase_confirmation",
        "variant": "confetti",
        "message": "x",
    }
    # Never exposed: the errors are events, and count against nothing.
    client_events_record(user_id=602, session_key=None, events=[error] * 10)
    assert set(_stats(experiment).values()) == {(0, 0, 0)}
    # Exposed: however many errors, the viewer counts once against their own variant.
    client_events_record(user_id=601, session_key=None, events=[_exposure(stream, variant), *[error] * 10])
    client_events_record(user_id=601, session_key=None, events=[error] * 10)
    assert _stats(experiment)[variant] == (1, 0, 1)
    assert OutboxEvent.objects.filter(type="client_error.reported").count() == 30
    assert not guardrails_evaluate()
