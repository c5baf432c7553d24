"""Assignment (docs/experiments.md, "Assignment"): GrowthBook's hash and buckets against
GrowthBook's own published test cases, determinism, the distribution over 10,000 synthetic
viewers, stickiness across a ramp and weight change, and control = the standard experience."""

from __future__ import annotations

import time

import pytest
from growthbook.core import chooseVariation, gbhash, getBucketRanges

from apps.experiments.assignment import bucket, choose, experience_for, spec_of, viewer_key
from apps.experiments.models import Assignment
from apps.experiments.services import client_events_record, experiment_update
from tests.experiments.conftest import ramp_from
from tests.factories import CreatorFactory, UserFactory

# From GrowthBook's SDK conformance cases (tests/cases.json of growthbook-python, spec
# version 0.7.1, sections "hash", "getBucketRange", "chooseVariation"): [seed, value,
# version, expected].
HASH_CASES = [
    ("", "a", 1, 0.22),
    ("", "b", 1, 0.077),
    ("b", "a", 1, 0.946),
    ("ef", "d", 1, 0.652),
    ("asdf", "8952klfjas09ujk", 1, 0.549),
    ("", "123", 1, 0.011),
    ("", '___)((*":&', 1, 0.563),
    ("seed", "a", 2, 0.0505),
    ("seed", "b", 2, 0.2696),
    ("foo", "ab", 2, 0.2575),
    ("foo", "def", 2, 0.2019),
    ("89123klj", "8952klfjas09ujkasdf", 2, 0.124),
    ("90850943850283058242805", "123", 2, 0.7516),
    ("()**(%$##$%#$#", '___)((*":&', 2, 0.0128),
]
BUCKET_CASES = [
    ((2, 1, None), [(0, 0.5), (0.5, 1)]),
    ((2, 0.5, None), [(0, 0.25), (0.5, 0.75)]),
    ((2, 0, None), [(0, 0), (0.5, 0.5)]),
    ((4, 1, None), [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
]
CHOOSE_CASES = [(0.2, 0), (0.4, 0), (0.6, 1), (0.8, 1), (0, 0)]


@pytest.mark.parametrize("seed, value, version, expected", HASH_CASES)
def test_growthbook_hash_vectors(seed, value, version, expected):
    assert gbhash(seed, value, version) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("args, expected", BUCKET_CASES)
def test_growthbook_bucket_ranges(args, expected):
    got = [x for r in getBucketRanges(*args) for x in r]
    assert got == pytest.approx([x for r in expected for x in r])


@pytest.mark.parametrize("n, expected", CHOOSE_CASES)
def test_growthbook_choose_variation(n, expected):
    assert chooseVariation(n, [(0, 0.5), (0.5, 1)]) == expected


def test_our_bucket_is_growthbooks_v2_hash_of_seed_and_viewer():
    assert bucket("seed", "a") == 0.0505  # the published vector, through our function
    assert viewer_key(user_id=12, session_key="abc") == "u:12"
    anonymous = viewer_key(user_id=None, session_key="abc")
    assert anonymous.startswith("s:") and "abc" not in anonymous
    assert viewer_key(user_id=None, session_key=None) is None


def test_assignment_is_deterministic_for_a_seed_and_viewer():
    picks = [choose(bucket("seed-21", f"u:{i}"), weights=[0.5, 0.5], coverage=1) for i in range(200)]
    again = [choose(bucket("seed-21", f"u:{i}"), weights=[0.5, 0.5], coverage=1) for i in range(200)]
    other_seed = [choose(bucket("seed-22", f"u:{i}"), weights=[0.5, 0.5], coverage=1) for i in range(200)]
    assert picks == again
    assert picks != other_seed  # the seed matters: experiments are independent


@pytest.mark.parametrize(
    "weights, coverage",
    [([0.5, 0.5], 1.0), ([0.2, 0.3, 0.5], 1.0), ([0.5, 0.5], 0.25), ([0.9, 0.1], 0.5)],
)
def test_distribution_over_10000_viewers_within_tolerance(weights, coverage):
    n = 10_000
    counts = [0] * (len(weights) + 1)  # the last: outside the ramp
    for i in range(n):
        counts[choose(bucket("dist-seed", f"s:{i:08x}"), weights=weights, coverage=coverage)] += 1
    expected = [w * coverage for w in weights] + [1 - coverage]
    for got, share in zip(counts, expected, strict=True):
        # 4 standard deviations of a binomial share: fails by chance about once in 15,000.
        tolerance = 4 * (share * (1 - share) / n) ** 0.5 + 1e-9
        assert abs(got / n - share) <= tolerance, (counts, expected)


def test_a_higher_ramp_keeps_everyone_who_was_in():
    for i in range(2000):
        n = bucket("ramp-seed", f"u:{i}")
        low = choose(n, weights=[0.5, 0.5], coverage=0.05)
        high = choose(n, weights=[0.5, 0.5], coverage=0.5)
        if low >= 0:
            assert high == low


@pytest.mark.django_db
def test_sticky_across_a_ramp_change_and_new_weights(make_experiment, stream_setup):
    creator, stream = stream_setup["creator"], stream_setup["stream"]
    experiment = make_experiment(creator, percent=100)
    spec = spec_of(experiment)
    now = time.time()
    viewers = [UserFactory() for _ in range(40)]
    seen = {}
    for user in viewers:
        variant = spec.hashed(viewer_key(user_id=user.pk, session_key=None), now)
        seen[user.pk] = variant
        client_events_record(
            user_id=user.pk,
            session_key=None,
            events=[{"kind": "exposure", "stream": stream.pk, "slot": "purchase_confirmation", "variant": variant}],
        )
    assert Assignment.objects.filter(experiment=experiment).count() == 40
    # The ramp drops to 5 % and the weights swing to control: the hash alone would now put
    # nearly everyone outside or in control; the exposed viewers keep what they saw.
    experiment_update(
        experiment=experiment,
        actor=creator,
        weights=[0.99, 0.01],
        ramp=ramp_from(5),
    )
    moved = 0
    now_spec = spec_of(experiment.__class__.objects.get(pk=experiment.pk))
    for user in viewers:
        experience, _ = experience_for(shop_id=creator.shop.pk, user_id=user.pk, session_key=None)
        assert experience == {"purchase_confirmation": seen[user.pk]}
        moved += now_spec.hashed(f"u:{user.pk}", time.time()) != seen[user.pk]
    assert moved > 10  # the change did move the hash of most of them
    # A viewer never exposed follows the new ramp and weights.
    fresh = [UserFactory() for _ in range(60)]
    fresh_variants = [experience_for(shop_id=creator.shop.pk, user_id=u.pk, session_key=None)[0] for u in fresh]
    assert sum(v["purchase_confirmation"] == "confetti" for v in fresh_variants) <= 3


@pytest.mark.django_db
def test_without_a_running_experiment_everyone_gets_the_standard_experience(make_experiment, stream_setup):
    creator = stream_setup["creator"]
    user = UserFactory()
    assert experience_for(shop_id=creator.shop.pk, user_id=user.pk, session_key=None) == ({}, {})
    make_experiment(creator, start=False)  # a draft changes nothing
    assert experience_for(shop_id=creator.shop.pk, user_id=user.pk, session_key=None) == ({}, {})
    # Another shop's experiment is not this shop's viewers' business.
    other = CreatorFactory()
    make_experiment(other, slot="badge_pops", variants=[{"key": "control", "weight": 0}, {"key": "off", "weight": 1}])
    assert experience_for(shop_id=creator.shop.pk, user_id=user.pk, session_key=None) == ({}, {})


@pytest.mark.django_db
def test_outside_the_ramp_is_control(make_experiment, stream_setup):
    creator = stream_setup["creator"]
    make_experiment(creator, ramp=ramp_from(50, ago=-3600))  # the first step is in an hour
    user = UserFactory()
    assert experience_for(shop_id=creator.shop.pk, user_id=user.pk, session_key=None)[0] == {
        "purchase_confirmation": "control"
    }
