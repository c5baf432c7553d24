"""The statistics of results and guardrails (apps/experiments/stats.py, docs/experiments.md):
intervals against published values, and the sequential guardrail under continuous
monitoring: simulated A/A runs keep the false-alarm rate under alpha, a real drop is found.
Pure functions, deterministic seeds: no database."""

from __future__ import annotations

import random

import pytest

from apps.experiments import stats

LIMITS = stats.Limits(alpha=0.05, tau=0.05, min_exposures=100, error_rate_max=0.05, error_min_count=5)


def test_wilson_matches_the_published_values():
    # Newcombe (1998), table I: 81/263 -> 0.2553 to 0.3662; 15/148 -> 0.0624 to 0.1605.
    assert stats.wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert stats.wilson(15, 148) == pytest.approx((0.0624, 0.1605), abs=1e-4)
    assert stats.wilson(0, 0) == (0.0, 1.0)


def test_difference_and_uplift_intervals():
    # Newcombe (1998), method 10: 56/70 - 48/80 = 0.2, interval 0.0524 to 0.3339.
    d = stats.difference(48, 80, 56, 70)
    assert d == pytest.approx((0.2, 0.0524, 0.3339), abs=1e-4)
    value, low, high = stats.uplift(100, 1000, 150, 1000)
    assert value == pytest.approx(0.5) and low < value < high and low > 0
    assert stats.uplift(0, 100, 5, 100) is None


def _simulate(rate_c, rate_t, *, runs, viewers, look_every, seed):
    """``runs`` experiments of ``viewers`` viewers each (half to each arm, at random), the
    guardrail looking every ``look_every`` viewers; returns how many runs it rolled back
    and at which viewer count each time."""
    rng = random.Random(seed)
    alarms = []
    for _ in range(runs):
        n = [0, 0]
        conv = [0, 0]
        best: dict = {}
        for i in range(1, viewers + 1):
            arm = rng.random() < 0.5
            n[arm] += 1
            conv[arm] += rng.random() < (rate_t if arm else rate_c)
            if i % look_every:
                continue
            verdict = stats.evaluate(
                [stats.Arm("control", n[0], conv[0], 0), stats.Arm("confetti", n[1], conv[1], 0)],
                LIMITS,
                best_lambda=best,
            )
            best = verdict.best_lambda
            if verdict.rollback:
                alarms.append(i)
                break
    return alarms


def test_no_rollback_on_noise_a_a_false_alarm_rate_under_alpha():
    # 400 A/A experiments of 3,000 viewers at a 10 % conversion rate, the guardrail looking
    # every 25 viewers (120 looks each): a fixed-horizon test at 5 % looked at this often
    # would alarm in far more than 5 % of them; the always-valid one must stay under alpha.
    alarms = _simulate(0.10, 0.10, runs=400, viewers=3000, look_every=25, seed=21)
    assert len(alarms) / 400 <= LIMITS.alpha, alarms


def test_a_conversion_drop_is_detected_by_the_sequential_test():
    alarms = _simulate(0.20, 0.10, runs=100, viewers=3000, look_every=25, seed=7)
    assert len(alarms) >= 95  # power: a halved rate is found in nearly every run
    assert sorted(alarms)[len(alarms) // 2] < 2000  # and early: the median run by 2,000 viewers


def test_a_variant_better_than_control_is_never_rolled_back():
    assert _simulate(0.10, 0.20, runs=50, viewers=2000, look_every=25, seed=3) == []


def test_error_rate_bound():
    arms = [stats.Arm("control", 50, 5, 0), stats.Arm("confetti", 50, 5, 4)]
    assert not stats.evaluate(arms, LIMITS).rollback  # 4 erroring viewers: under the minimum count
    arms[1] = stats.Arm("confetti", 50, 5, 6)
    verdict = stats.evaluate(arms, LIMITS)
    assert verdict.rollback and verdict.reason == "error_rate" and "confetti" in verdict.detail
    # Errors of control itself never roll back (they are not the variant's fault).
    assert not stats.evaluate([stats.Arm("control", 50, 5, 50), stats.Arm("confetti", 50, 5, 0)], LIMITS).rollback
