"""The experiments API and admin (docs/experiments.md, "API", "Admin"): who sees what,
manual pause, resume and stop, the results' numbers and the chart."""

from __future__ import annotations

import time

import pytest

from apps.audit.models import AuditEntry
from apps.experiments.assignment import experience_for, spec_of
from apps.experiments.exceptions import PlatformWideNeedsStaff, SlotBusy
from apps.experiments.models import Experiment
from apps.experiments.services import client_events_record, conversion_record, experiment_rollback
from creatorcommerce.spine.models import OutboxEvent
from tests.factories import CreatorFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_shops(stream_setup, make_experiment):
    creator = stream_setup["creator"]
    other = CreatorFactory()
    return {
        "creator": creator,
        "other": other,
        "mine": make_experiment(creator, name="Mine"),
        "theirs": make_experiment(other, name="Theirs"),
    }


def test_list_permissions(api_client, two_shops):
    assert api_client.get("/api/v1/experiments/").status_code == 401
    api_client.force_authenticate(UserFactory())
    answer = api_client.get("/api/v1/experiments/")
    assert answer.status_code == 403 and answer.json()["code"] == "permission_denied"
    api_client.force_authenticate(two_shops["creator"])
    assert [e["name"] for e in api_client.get("/api/v1/experiments/").json()] == ["Mine"]
    api_client.force_authenticate(StaffFactory())
    assert sorted(e["name"] for e in api_client.get("/api/v1/experiments/").json()) == ["Mine", "Theirs"]


def test_results_permissions(api_client, two_shops):
    mine, theirs = two_shops["mine"], two_shops["theirs"]
    api_client.force_authenticate(two_shops["creator"])
    assert api_client.get(f"/api/v1/experiments/{mine.pk}/results/").status_code == 200
    answer = api_client.get(f"/api/v1/experiments/{theirs.pk}/results/")
    assert answer.status_code == 404 and answer.json()["code"] == "experiment_not_found"
    api_client.force_authenticate(UserFactory())
    assert api_client.get(f"/api/v1/experiments/{mine.pk}/results/").status_code == 403
    api_client.force_authenticate(StaffFactory())
    assert api_client.get(f"/api/v1/experiments/{theirs.pk}/results/").status_code == 200


def test_results_numbers(api_client, stream_setup, make_experiment):
    stream = stream_setup["stream"]
    experiment = make_experiment(stream_setup["creator"])
    spec = spec_of(experiment)
    seen = {"control": 0, "confetti": 0}
    for uid in range(1, 201):
        variant = spec.hashed(f"u:{uid}", time.time())
        client_events_record(
            user_id=uid,
            session_key=None,
            events=[{"kind": "exposure", "stream": stream.pk, "slot": "purchase_confirmation", "variant": variant}],
        )
        seen[variant] += 1
        if seen[variant] % (5 if variant == "control" else 4) == 0:
            conversion_record(
                payload={"stream": stream.pk, "buyer": uid, "order": uid},
                at=experiment.started_at.now(tz=experiment.started_at.tzinfo),
            )
    api_client.force_authenticate(stream_setup["creator"])
    body = api_client.get(f"/api/v1/experiments/{experiment.pk}/results/").json()
    control, confetti = body["results"]
    assert control["variant"] == "control" and confetti["variant"] == "confetti"
    assert control["exposures"] + confetti["exposures"] == 200
    assert control["conversions"] == control["exposures"] // 5
    assert control["rate_low"] < control["rate"] < control["rate_high"]
    assert control["difference"] is None and control["uplift"] is None
    assert confetti["difference"]["low"] < confetti["difference"]["value"] < confetti["difference"]["high"]
    assert confetti["uplift"]["value"] == pytest.approx(confetti["rate"] / control["rate"] - 1, abs=1e-5)
    assert body["ramp"]["step"] == 0 and body["ramp"]["percent"] == 100 and body["ramp"]["next"] is None
    assert body["status"] == "running" and body["slot"] == "purchase_confirmation"


def test_pause_resume_stop_by_api(api_client, stream_setup, make_experiment, django_capture_on_commit_callbacks):
    stream, creator = stream_setup["stream"], stream_setup["creator"]
    experiment = make_experiment(creator)
    viewer = UserFactory()
    assert experience_for(shop_id=creator.shop.pk, user_id=viewer.pk, session_key=None)[0] != {}
    api_client.force_authenticate(UserFactory())
    assert api_client.post(f"/api/v1/experiments/{experiment.pk}/pause", {}, format="json").status_code == 403
    api_client.force_authenticate(creator)
    with django_capture_on_commit_callbacks(execute=True):  # the process's copy is dropped on commit
        answer = api_client.post(f"/api/v1/experiments/{experiment.pk}/pause", {"reason": "looks off"}, format="json")
    assert answer.status_code == 200 and answer.json()["status"] == "paused"
    assert experience_for(shop_id=creator.shop.pk, user_id=viewer.pk, session_key=None)[0] == {}
    paused = OutboxEvent.objects.get(type="experiment.paused")
    assert paused.payload["reason"] == "looks off" and f"stream.{stream.pk}" in paused.groups
    again = api_client.post(f"/api/v1/experiments/{experiment.pk}/pause", format="json")
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    assert api_client.post(f"/api/v1/experiments/{experiment.pk}/resume", format="json").json()["status"] == "running"
    assert api_client.post(f"/api/v1/experiments/{experiment.pk}/stop", format="json").json()["status"] == "stopped"
    assert api_client.post(f"/api/v1/experiments/{experiment.pk}/resume", format="json").status_code == 409
    bad = api_client.post(f"/api/v1/experiments/{experiment.pk}/stop", {"why": 1}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_reason"
    entries = AuditEntry.objects.filter(object_id=str(experiment.pk)).order_by("pk")
    actions = list(entries.values_list("action", flat=True))
    assert actions == [
        "experiment.created",
        "experiment.started",
        "experiment.paused",
        "experiment.resumed",
        "experiment.stopped",
    ]


def test_one_running_experiment_per_slot_and_viewers(stream_setup, make_experiment):
    creator = stream_setup["creator"]
    make_experiment(creator)
    with pytest.raises(SlotBusy):
        make_experiment(creator, name="Second")
    with pytest.raises(PlatformWideNeedsStaff):
        make_experiment(creator, shop=None)
    with pytest.raises(SlotBusy):  # a platform-wide one would reach this shop's viewers too
        make_experiment(StaffFactory(), shop=None)
    make_experiment(
        StaffFactory(),
        shop=None,
        slot="badge_pops",
        variants=[{"key": "control", "weight": 0.5}, {"key": "off", "weight": 0.5}],
    )


def test_admin_results_page_and_the_reason_of_a_rollback(client, stream_setup, make_experiment):
    creator = stream_setup["creator"]
    experiment = make_experiment(creator)
    experiment_rollback(experiment=experiment, reason="error_rate", detail="confetti: 9 errors", checks={})
    client.force_login(creator)
    page = client.get(f"/admin/experiments/experiment/{experiment.pk}/results/")
    assert page.status_code == 200
    html = page.content.decode()
    assert (
        "<svg" in html
        and 'class="experiment-chart"' in html
        and "http" not in html.split("<svg", 1)[1].split("</svg>")[0].replace("http://www.w3.org/2000/svg", "")
    )
    assert "Rolled back by the guardrail (error_rate): confetti: 9 errors" in html
    change = client.get(f"/admin/experiments/experiment/{experiment.pk}/change/").content.decode()
    assert "Rolled back by the guardrail (error_rate)" in change
    other = CreatorFactory()
    client.force_login(other)
    assert client.get(f"/admin/experiments/experiment/{experiment.pk}/results/").status_code == 404
    assert Experiment.objects.get(pk=experiment.pk).status == "rolled_back"


def test_admin_creates_and_pauses_through_the_services(client, stream_setup):
    creator = stream_setup["creator"]
    client.force_login(creator)
    answer = client.post(
        "/admin/experiments/experiment/add/",
        {
            "name": "Ticker off",
            "slot": "social_proof_ticker",
            "variants": '[{"key": "control", "weight": 0.5}, {"key": "off", "weight": 0.5}]',
            "ramp": '[{"at": "2026-01-01T00:00:00Z", "percent": 5}, '
            '{"at": "2026-01-02T00:00:00+01:00", "percent": 25}]',
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    experiment = Experiment.objects.get(name="Ticker off")
    assert experiment.shop == creator.shop and experiment.status == "draft"
    assert OutboxEvent.objects.filter(type="experiment.created", payload__experiment=experiment.pk).exists()
    changelist = "/admin/experiments/experiment/"
    client.post(changelist, {"action": "start", "_selected_action": [experiment.pk]})
    client.post(changelist, {"action": "pause", "_selected_action": [experiment.pk]})
    assert Experiment.objects.get(pk=experiment.pk).status == "paused"
    bad = client.post(
        "/admin/experiments/experiment/add/",
        {"name": "Bad", "slot": "badge_pops", "variants": '[{"key": "confetti", "weight": 1}]', "ramp": "[]"},
    )
    assert bad.status_code == 200 and not Experiment.objects.filter(name="Bad").exists()
