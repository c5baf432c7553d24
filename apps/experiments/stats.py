"""Statistics of results and guardrails (docs/experiments.md, "Results" and "Guardrails").

- Rates carry a 95 % Wilson score interval; the difference of a variant's rate from
  control's carries Newcombe's hybrid score interval (built from the two Wilson
  intervals), and the relative uplift a log-ratio (Katz) interval.
- The conversion guardrail is a mixture sequential probability ratio test (mSPRT, Johari,
  Pekelis & Walsh, "Always valid inference", 2017) on the difference of conversion rates,
  normal approximation: with the observed difference d and its variance v, and a normal
  mixing distribution N(0, tau^2) over the true difference,

      Lambda = sqrt(v / (v + tau^2)) * exp(tau^2 d^2 / (2 v (v + tau^2)))

  and the always-valid p-value is min(1, 1 / max Lambda so far). Under the null, the chance
  that Lambda *ever* reaches 1/alpha is at most alpha (Ville's inequality), however often it
  is looked at: the guardrail may look every few seconds. It rolls back only when the
  variant is *below* control (a one-sided use of the two-sided test, so the false-alarm
  level stays at most alpha), with alpha split evenly over the non-control variants
  (Bonferroni).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def difference(conv_c: int, n_c: int, conv_t: int, n_t: int) -> tuple[float, float, float] | None:
    """Treatment rate minus control rate, with Newcombe's 95 % interval (None without data)."""
    if n_c <= 0 or n_t <= 0:
        return None
    pc, pt = conv_c / n_c, conv_t / n_t
    lc, uc = wilson(conv_c, n_c)
    lt, ut = wilson(conv_t, n_t)
    d = pt - pc
    return (d, d - math.sqrt((pt - lt) ** 2 + (uc - pc) ** 2), d + math.sqrt((ut - pt) ** 2 + (pc - lc) ** 2))


def uplift(conv_c: int, n_c: int, conv_t: int, n_t: int) -> tuple[float, float, float] | None:
    """(rate_t / rate_c - 1) with a 95 % log-ratio interval; None while either rate is 0."""
    if conv_c <= 0 or conv_t <= 0 or n_c <= 0 or n_t <= 0:
        return None
    pc, pt = conv_c / n_c, conv_t / n_t
    se = math.sqrt((1 - pt) / conv_t + (1 - pc) / conv_c)
    log_ratio = math.log(pt / pc)
    return (pt / pc - 1, math.exp(log_ratio - Z95 * se) - 1, math.exp(log_ratio + Z95 * se) - 1)


def msprt(conv_c: int, n_c: int, conv_t: int, n_t: int, *, tau: float) -> float:
    """The mixture likelihood ratio Lambda for "the rates differ" (1.0 without evidence)."""
    if n_c <= 0 or n_t <= 0:
        return 1.0
    pc, pt = conv_c / n_c, conv_t / n_t
    v = pc * (1 - pc) / n_c + pt * (1 - pt) / n_t
    if v <= 0:
        pooled = (conv_c + conv_t) / (n_c + n_t)
        v = pooled * (1 - pooled) * (1 / n_c + 1 / n_t)
    if v <= 0:
        return 1.0
    t2 = tau * tau
    d = pt - pc
    exponent = t2 * d * d / (2 * v * (v + t2))
    return math.sqrt(v / (v + t2)) * math.exp(min(exponent, 700.0))


@dataclass(frozen=True)
class Arm:
    variant: str
    exposures: int
    conversions: int
    errors: int  # exposed viewers who reported a client error


@dataclass(frozen=True)
class Limits:
    alpha: float  # false-alarm level of the conversion guardrail
    tau: float  # mSPRT mixing standard deviation, on the rate difference
    min_exposures: int  # per arm, before the conversion test looks
    error_rate_max: float  # erroring viewers per exposed viewer
    error_min_count: int  # erroring viewers of a variant before its rate counts


@dataclass(frozen=True)
class Verdict:
    rollback: bool
    reason: str  # "", "error_rate" or "conversion_drop"
    detail: str
    checks: dict
    best_lambda: dict  # variant -> the largest Lambda (below control) seen so far


def evaluate(arms: list[Arm], limits: Limits, *, best_lambda: dict | None = None) -> Verdict:
    """The guardrails on one experiment's aggregates; ``arms[0]`` is control. ``best_lambda``
    (variant -> the largest Lambda seen so far) makes the p-values always-valid across
    evaluations; the returned ``checks`` carry the new maxima."""
    best_lambda = dict(best_lambda or {})
    control, treatments = arms[0], arms[1:]
    checks: dict = {}
    threshold = len(treatments) / limits.alpha if treatments else math.inf
    for arm in treatments:
        rate = arm.errors / arm.exposures if arm.exposures else (1.0 if arm.errors else 0.0)
        lam = 1.0
        if min(control.exposures, arm.exposures) >= limits.min_exposures:
            lam = msprt(control.conversions, control.exposures, arm.conversions, arm.exposures, tau=limits.tau)
        below = (
            arm.exposures > 0
            and control.exposures > 0
            and (arm.conversions / arm.exposures < control.conversions / control.exposures)
        )
        best = max(best_lambda.get(arm.variant, 1.0), lam if below else 1.0)
        best_lambda[arm.variant] = best
        checks[arm.variant] = {
            "error_rate": round(rate, 6),
            "errors": arm.errors,
            "lambda": round(lam, 6),
            "p_value": round(min(1.0, 1 / best), 6),
            "below_control": below,
        }
        if arm.errors >= limits.error_min_count and rate > limits.error_rate_max:
            return Verdict(
                True,
                "error_rate",
                f"{arm.variant}: {arm.errors} of {arm.exposures} exposed viewers reported client errors "
                f"({rate:.1%}), above the bound of {limits.error_rate_max:.1%}",
                checks,
                best_lambda,
            )
        if below and best >= threshold:
            pc = control.conversions / control.exposures
            pt = arm.conversions / arm.exposures
            return Verdict(
                True,
                "conversion_drop",
                f"{arm.variant}: conversion {pt:.2%} against control's {pc:.2%} "
                f"(always-valid p = {1 / best:.4f} < {limits.alpha / len(treatments):.4f})",
                checks,
                best_lambda,
            )
    return Verdict(False, "", "", checks, best_lambda)
