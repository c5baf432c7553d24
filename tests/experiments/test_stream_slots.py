"""Stream-level slots (docs/experiments.md, "Stream-level slots"; docs/devices.md,
"Experiments"): the LED urgency cue is a stream's, not a viewer's. A running experiment on
``led_urgency_cue`` hashes each stream; a stream given ``off`` gets no urgency cue (its other
cues still go), a ``control`` stream gets it as without any experiment; the stream's first
decision is its exposure, its first order after that its conversion; a rollback gives every
stream the standard cue again; viewers are never assigned the slot."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.devices.models import Cue
from apps.devices.services import cue_rule_create, cues_for_event, device_create, room_create
from apps.experiments.assignment import experience_for, forget_running, spec_of, stream_key
from apps.experiments.models import Assignment, Exposure, VariantStats
from apps.experiments.services import client_events_record, conversion_record, experiment_rollback
from apps.streams.extras import stream_variant
from apps.streams.models import Stream
from apps.streams.services import stream_start
from creatorcommerce.spine.models import OutboxEvent
from tests.factories import CreatorFactory

pytestmark = pytest.mark.django_db

SLOT = "led_urgency_cue"
_events = itertools.count(1)


@pytest.fixture(autouse=True)
def _log_driver(settings):
    settings.MQTT_URL = ""
    settings.DEVICES_SIMULATE_IN_PROCESS = False


@pytest.fixture
def studio(db):
    """A creator's shop with a light (urgency cues) and an LED strip (pulses), and rules: on
    every ``deal.opened`` of the shop's streams the light shows urgency and the strip pulses;
    at 5 or fewer left of any SKU the light shows urgency."""
    creator = CreatorFactory()
    room = room_create(shop=creator.shop, name="Studio")
    light, _ = device_create(room=room, name="Light", kind="light", mqtt_id=f"light-{creator.pk}")
    strip, _ = device_create(room=room, name="Strip", kind="led_strip", mqtt_id=f"strip-{creator.pk}")
    shop = creator.shop
    cue_rule_create(shop=shop, event_type="deal.opened", device=light, kind="urgency", params={"level": 2})
    cue_rule_create(shop=shop, event_type="deal.opened", device=strip, kind="pulse")
    cue_rule_create(shop=shop, event_type="stock.changed", device=light, kind="urgency", available_at_most=5)
    return {"creator": creator, "shop": shop}


@pytest.fixture
def urgency_experiment(studio, make_experiment):
    return make_experiment(
        studio["creator"],
        slot=SLOT,
        name="Does the urgency light sell?",
        variants=[{"key": "control", "weight": 0.5}, {"key": "off", "weight": 0.5}],
    )


def _stream(shop, variant: str, experiment, *, live: bool = True) -> Stream:
    """A new stream of ``shop`` that the experiment's hash gives ``variant``."""
    spec = spec_of(experiment)
    for n in range(200):
        stream = Stream.objects.create(shop=shop, title=f"Drop {n}", starts_at=timezone.now() + timedelta(hours=1))
        if spec.hashed(stream_key(stream.pk), timezone.now().timestamp()) == variant:
            return stream_start(stream=stream) if live else stream
        stream.delete()
    raise AssertionError(f"no stream hashed to {variant}")


def _deal_opened(shop, stream) -> list[str]:
    """The kinds of the cues a ``deal.opened`` in ``stream`` makes."""
    ids = cues_for_event(
        event_id=next(_events),
        event_type="deal.opened",
        payload={"stream": stream.pk, "shop": shop.pk, "sku_id": 0, "deal_id": 1, "version": 1},
    )
    return sorted(Cue.objects.filter(pk__in=ids).values_list("kind", flat=True))


def _low_stock(shop) -> list[str]:
    ids = cues_for_event(
        event_id=next(_events),
        event_type="stock.changed",
        payload={"sku": "X", "sku_id": 0, "shop": shop.pk, "level": 1, "available": 3, "version": 1},
    )
    return sorted(Cue.objects.filter(pk__in=ids).values_list("kind", flat=True))


def _stats(experiment) -> dict:
    return {s.variant: (s.exposures, s.conversions) for s in VariantStats.objects.filter(experiment=experiment)}


def test_a_stream_given_off_gets_no_urgency_cue_and_a_control_stream_gets_it(studio, urgency_experiment):
    shop, experiment = studio["shop"], urgency_experiment
    control, off = _stream(shop, "control", experiment), _stream(shop, "off", experiment)
    mark = OutboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    assert _deal_opened(shop, control) == ["pulse", "urgency"]  # the standard
    assert _deal_opened(shop, off) == ["pulse"]  # the urgency cue held back, the pulse still goes
    # Each stream's first decision is its exposure: its assignment, one exposed stream per
    # variant, experiment.exposed (no viewer in it).
    assert dict(Assignment.objects.filter(experiment=experiment).values_list("viewer", "variant")) == {
        stream_key(control.pk): "control",
        stream_key(off.pk): "off",
    }
    assert _stats(experiment) == {"control": (1, 0), "off": (1, 0)}
    exposed = OutboxEvent.objects.filter(pk__gt=mark, type="experiment.exposed").order_by("pk")
    assert [(e.payload["variant"], e.payload["stream"]) for e in exposed] == [("control", control.pk), ("off", off.pk)]
    # Later decisions read the assignment: same cues, nothing counted again.
    assert _deal_opened(shop, off) == ["pulse"]
    assert _deal_opened(shop, control) == ["pulse", "urgency"]
    assert _stats(experiment) == {"control": (1, 0), "off": (1, 0)}

    # The stream's first order after its exposure converts it, once.
    now = timezone.now()
    assert conversion_record(payload={"stream": off.pk, "buyer": 9001, "order": 1}, at=now) == [experiment.pk]
    assert conversion_record(payload={"stream": off.pk, "buyer": 9002, "order": 2}, at=now) == []
    assert _stats(experiment) == {"control": (1, 0), "off": (1, 1)}
    assert Exposure.objects.filter(assignment__experiment=experiment).count() == 2

    # The slot is no viewer's: not in a viewer's experience, and a client cannot report it.
    assert experience_for(shop_id=shop.pk, user_id=77, session_key=None) == ({}, {})
    exposure = {"kind": "exposure", "stream": off.pk, "slot": SLOT, "variant": "off"}
    assert client_events_record(user_id=77, session_key=None, events=[exposure]) == {
        "exposures": 0,
        "errors": 0,
        "ignored": 1,
    }
    assert _stats(experiment) == {"control": (1, 0), "off": (1, 1)}


def test_a_rollback_gives_every_stream_the_urgency_cue_again(studio, urgency_experiment):
    shop, experiment = studio["shop"], urgency_experiment
    off = _stream(shop, "off", experiment)
    assert _deal_opened(shop, off) == ["pulse"]
    experiment_rollback(experiment=experiment, reason="conversion_drop", detail="off: fewer sales", checks={})
    # This process's copy still lists the experiment as running (it is dropped on commit,
    # which this test's transaction never reaches): the database decides, at once.
    assert _deal_opened(shop, off) == ["pulse", "urgency"]
    forget_running()
    assert _deal_opened(shop, off) == ["pulse", "urgency"]
    assert _stats(experiment) == {"control": (0, 0), "off": (1, 0)}


def test_a_cue_of_no_stream_counts_for_the_shops_one_live_stream(studio, urgency_experiment):
    """A stock threshold's cue has no stream: it is seen in the shop's live stream, so that
    stream's variant decides it; with two live streams it is nobody's, and goes as standard."""
    shop, experiment = studio["shop"], urgency_experiment
    off = _stream(shop, "off", experiment)
    assert _low_stock(shop) == []
    assert Assignment.objects.get(experiment=experiment).viewer == stream_key(off.pk)
    _stream(shop, "control", experiment)
    assert _low_stock(shop) == ["urgency"]
    assert _stats(experiment) == {"control": (0, 0), "off": (1, 0)}


def test_outside_the_ramp_a_stream_gets_the_standard_and_is_not_counted(studio, make_experiment):
    experiment = make_experiment(
        studio["creator"],
        slot=SLOT,
        variants=[{"key": "control", "weight": 0.0}, {"key": "off", "weight": 1.0}],
        ramp=[{"at": (timezone.now() + timedelta(hours=1)).isoformat(), "percent": 100}],
    )
    stream = stream_start(stream=Stream.objects.create(shop=studio["shop"], title="Live", starts_at=timezone.now()))
    assert _deal_opened(studio["shop"], stream) == ["pulse", "urgency"]
    assert not Assignment.objects.filter(experiment=experiment).exists()


def test_without_a_running_experiment_the_urgency_cue_costs_no_query(studio, django_assert_num_queries):
    shop = studio["shop"]
    stream = stream_start(stream=Stream.objects.create(shop=shop, title="Live", starts_at=timezone.now()))
    now = timezone.now()
    stream_variant(SLOT, shop_id=shop.pk, stream_id=stream.pk, at=now)  # reads the running experiments
    with django_assert_num_queries(0):
        assert stream_variant(SLOT, shop_id=shop.pk, stream_id=lambda: 1 / 0, at=now) is None
    assert _deal_opened(shop, stream) == ["pulse", "urgency"]
