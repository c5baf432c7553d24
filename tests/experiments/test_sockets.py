"""The experience on the stream's WebSocket (docs/experiments.md, "Delivery"; docs/streams.md):
in the snapshot of anonymous and signed-in viewers, sticky across reconnects, and pushed back
to the standard experience to live viewers when the guardrail rolls an experiment back. On
the in-memory layer and on both channels-redis layers against the real Redis."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import Client

from apps.audit.models import AuditEntry
from apps.experiments.models import Experiment
from apps.experiments.services import experiment_update
from apps.experiments.tasks import evaluate_guardrails
from tests.factories import UserFactory
from tests.helpers import WAIT, events_since, last_event_id
from tests.streams.sockets import new_session, open_socket, receive_until, token_for

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]

ALL_CONFETTI = [{"key": "control", "weight": 0.0}, {"key": "confetti", "weight": 1.0}]


async def _anonymous(stream, key=None):
    key = key or await sync_to_async(new_session)()
    comm = await open_socket(stream, token_for(stream, session_key=key), session_key=key)
    snapshot = await comm.receive_json_from(timeout=WAIT)
    assert snapshot["type"] == "snapshot"
    return comm, snapshot, key


async def _signed_in(stream, user):
    client = Client()
    await sync_to_async(client.force_login)(user)
    cookie = client.cookies["sessionid"].value
    comm = await open_socket(stream, token_for(stream, session_key=cookie, user_id=user.pk), session_key=cookie)
    snapshot = await comm.receive_json_from(timeout=WAIT)
    assert snapshot["type"] == "snapshot"
    return comm, snapshot


async def test_snapshot_carries_the_experience_for_anonymous_and_signed_in_viewers(
    layer, stream_setup, make_experiment, close_db_after
):
    stream, creator = stream_setup["stream"], stream_setup["creator"]
    comm, snapshot, _ = await _anonymous(stream)
    assert snapshot["experience"] == {}  # nothing runs: the standard experience
    await comm.disconnect()

    await sync_to_async(make_experiment)(creator, variants=ALL_CONFETTI)
    await sync_to_async(make_experiment)(
        creator, slot="social_proof_ticker", variants=[{"key": "control", "weight": 1.0}, {"key": "off", "weight": 0.0}]
    )
    comm, snapshot, _ = await _anonymous(stream)
    assert snapshot["experience"] == {"purchase_confirmation": "confetti", "social_proof_ticker": "control"}
    await comm.disconnect()

    user = await sync_to_async(UserFactory)()
    comm, snapshot = await _signed_in(stream, user)
    assert snapshot["experience"] == {"purchase_confirmation": "confetti", "social_proof_ticker": "control"}
    await comm.disconnect()


async def test_the_variant_is_sticky_across_reconnects_and_a_weight_change(
    layer, stream_setup, make_experiment, api_client, close_db_after
):
    stream, creator = stream_setup["stream"], stream_setup["creator"]
    experiment = await sync_to_async(make_experiment)(creator, variants=ALL_CONFETTI)
    comm, snapshot, key = await _anonymous(stream)
    assert snapshot["experience"] == {"purchase_confirmation": "confetti"}
    # The page rendered it and says so: the first exposure records the assignment.
    api_client.cookies["sessionid"] = key
    response = await sync_to_async(api_client.post)(
        "/api/v1/client-events/",
        {"events": [{"kind": "exposure", "stream": stream.pk, "slot": "purchase_confirmation", "variant": "confetti"}]},
        format="json",
    )
    assert response.status_code == 202 and response.json()["exposures"] == 1
    await comm.disconnect()
    # Everyone new now gets control; this viewer, reconnecting, keeps confetti.
    await sync_to_async(experiment_update)(experiment=experiment, actor=creator, weights=[1.0, 0.0])
    comm, snapshot, _ = await _anonymous(stream, key)
    assert snapshot["experience"] == {"purchase_confirmation": "confetti"}
    await comm.disconnect()
    other, snapshot, _ = await _anonymous(stream)
    assert snapshot["experience"] == {"purchase_confirmation": "control"}
    await other.disconnect()


async def test_an_error_spike_rolls_back_and_live_viewers_get_the_standard_experience(
    layer, stream_setup, make_experiment, api_client, close_db_after
):
    stream, creator = stream_setup["stream"], stream_setup["creator"]
    experiment = await sync_to_async(make_experiment)(creator, variants=ALL_CONFETTI)
    comm, snapshot, key = await _anonymous(stream)
    signed, signed_snapshot = await _signed_in(stream, await sync_to_async(UserFactory)())
    assert snapshot["experience"] == signed_snapshot["experience"] == {"purchase_confirmation": "confetti"}

    # The confetti breaks on the pages of this viewer and of four others: each reports its
    # exposure, then an error (repeats of one viewer's errors would count once).
    events = [
        {"kind": "exposure", "stream": stream.pk, "slot": "purchase_confirmation", "variant": "confetti"},
        *[
            {
                "kind": "error",
                "stream": stream.pk,
                "slot": "purchase_confirmation",
                "variant": "confetti",
                "message": "TypeError: confetti is not a function",
            }
        ]
        * 3,
    ]
    others = [await sync_to_async(new_session)() for _ in range(settings.EXPERIMENT_ERROR_MIN_COUNT - 1)]
    for session in [key, *others]:
        api_client.cookies["sessionid"] = session
        response = await sync_to_async(api_client.post)("/api/v1/client-events/", {"events": events}, format="json")
        assert response.status_code == 202 and response.json()["errors"] == 3

    # Beat runs the guardrails every EXPERIMENT_GUARDRAIL_SECONDS; this is one such run.
    assert settings.CELERY_BEAT_SCHEDULE["experiments-guardrails"]["schedule"].total_seconds() == (
        settings.EXPERIMENT_GUARDRAIL_SECONDS
    )
    mark = await sync_to_async(last_event_id)()
    started = time.monotonic()
    rolled = await sync_to_async(evaluate_guardrails.delay)()
    assert rolled.result == [experiment.pk]  # an eager result: .get() refuses inside a task's context
    expected = {"type": "experience", "experience": {"purchase_confirmation": "control"}, "reason": "rolled_back"}
    for socket in (comm, signed):
        got = await receive_until(socket, lambda messages: messages[-1]["type"] == "experience", timeout=WAIT)
        assert got[-1] == expected
    # Within one evaluation interval of the guardrail's run, both pages are standard again.
    assert time.monotonic() - started < settings.EXPERIMENT_GUARDRAIL_SECONDS

    experiment = await sync_to_async(Experiment.objects.get)(pk=experiment.pk)
    assert experiment.status == Experiment.Status.ROLLED_BACK
    assert "error_rate" in experiment.reason and "confetti" in experiment.reason
    rolled_back = await sync_to_async(events_since)(mark, "experiment.rolled_back")
    assert [e.payload["reason"] for e in rolled_back] == ["error_rate"]
    assert f"stream.{stream.pk}" in rolled_back[0].groups
    audit = await sync_to_async(AuditEntry.objects.filter(action="experiment.rolled_back").count)()
    assert audit == 1
    # A viewer arriving now gets the standard experience in the snapshot.
    late, snapshot, _ = await _anonymous(stream)
    assert snapshot["experience"] == {}
    for socket in (comm, signed, late):
        await socket.disconnect()
