"""Where two profiles of the same work differ: per function, calls and CPU per buy before
and after, the largest differences first. For the raw profiles bench/buy_inprocess.py
``--cprofile`` writes (``<out>-service.prof``, ``<out>-http.prof``; timed by the thread's CPU
clock), e.g. from a bench/compare.py run:

    .venv/bin/python bench/profile_diff.py --n 1000 \\
        bench/results/compare-<ts>-runs/inprocess-before-r1-service.prof \\
        bench/results/compare-<ts>-runs/inprocess-after-r1-service.prof

Functions are matched by file (relative to the checkout or to site-packages) and name, not
line, so that a function that moved within its file still matches. ``--json`` writes the
tables too. Never asserts.
"""

from __future__ import annotations

import argparse
import json
import pstats
import re
from pathlib import Path


def load(path: Path, n: int) -> dict[str, dict]:
    """{function: {calls, own_ms, cum_ms}} per buy, aggregated over same-named functions of a
    file (comprehensions and lambdas of one file add up)."""
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    out: dict[str, dict] = {}
    for (filename, _line, name), (_cc, nc, tt, ct, _callers) in stats.items():
        key = f"{short(filename)}:{re.sub(r' at 0x[0-9a-f]+', '', name)}"
        row = out.setdefault(key, {"calls": 0.0, "own_ms": 0.0, "cum_ms": 0.0})
        row["calls"] += nc / n
        row["own_ms"] += 1000 * tt / n
        row["cum_ms"] = max(row["cum_ms"], 1000 * ct / n)  # nested same-named: the outer one
    return out


def short(filename: str) -> str:
    if "site-packages/" in filename:
        return filename.rsplit("site-packages/", 1)[1]
    match = re.search(r"/((?:apps|creatorcommerce|bench)/.*)$", filename)
    if match:
        return match.group(1)
    return filename.rsplit("/lib/python3", 1)[-1] if "/lib/python3" in filename else filename


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--n", type=int, required=True, help="buys each profile covers (buy_inprocess.py's --n)")
    parser.add_argument("--n-after", type=int, help="buys of the after profile, if not --n")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    before, after = load(args.before, args.n), load(args.after, args.n_after or args.n)
    zero = {"calls": 0.0, "own_ms": 0.0, "cum_ms": 0.0}
    rows = []
    for key in before.keys() | after.keys():
        b, a = before.get(key, zero), after.get(key, zero)
        rows.append(
            {
                "function": key,
                "calls_before": round(b["calls"], 2),
                "calls_after": round(a["calls"], 2),
                "own_ms_before": round(b["own_ms"], 4),
                "own_ms_after": round(a["own_ms"], 4),
                "own_ms_delta": round(a["own_ms"] - b["own_ms"], 4),
                "cum_ms_before": round(b["cum_ms"], 4),
                "cum_ms_after": round(a["cum_ms"], 4),
                "cum_ms_delta": round(a["cum_ms"] - b["cum_ms"], 4),
            }
        )
    total_b = sum(r["own_ms"] for r in before.values())
    total_a = sum(r["own_ms"] for r in after.values())
    calls_b = sum(r["calls"] for r in before.values())
    calls_a = sum(r["calls"] for r in after.values())
    print(
        f"profiled CPU per buy: {total_b:.3f} -> {total_a:.3f} ms ({total_a - total_b:+.3f}); "
        f"calls per buy: {calls_b:.0f} -> {calls_a:.0f} ({calls_a - calls_b:+.0f})"
    )
    by_own = sorted(rows, key=lambda r: -abs(r["own_ms_delta"]))[: args.top]
    print(f"\nLargest differences in own CPU time per buy (ms; calls per buy), top {args.top}:")
    for r in by_own:
        print(
            f"{r['own_ms_delta']:+8.4f}  {r['own_ms_before']:7.4f} -> {r['own_ms_after']:7.4f}  "
            f"calls {r['calls_before']:6.1f} -> {r['calls_after']:6.1f}  {r['function']}"
        )
    project = [r for r in rows if r["function"].startswith(("apps/", "creatorcommerce/"))]
    by_cum = sorted(project, key=lambda r: -abs(r["cum_ms_delta"]))[: args.top]
    print(f"\nThe project's functions, largest differences in cumulative CPU per buy (ms), top {args.top}:")
    for r in by_cum:
        print(
            f"{r['cum_ms_delta']:+8.4f}  {r['cum_ms_before']:7.4f} -> {r['cum_ms_after']:7.4f}  "
            f"calls {r['calls_before']:6.1f} -> {r['calls_after']:6.1f}  {r['function']}"
        )
    by_calls = sorted(rows, key=lambda r: -abs(r["calls_after"] - r["calls_before"]))[: args.top]
    print(f"\nLargest differences in calls per buy, top {args.top}:")
    for r in by_calls:
        print(
            f"{r['calls_after'] - r['calls_before']:+7.1f}  {r['calls_before']:6.1f} -> {r['calls_after']:6.1f}  "
            f"own {r['own_ms_before']:.4f} -> {r['own_ms_after']:.4f} ms  {r['function']}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "before": str(args.before),
                    "after": str(args.after),
                    "profiled_cpu_ms_per_buy": [round(total_b, 3), round(total_a, 3)],
                    "calls_per_buy": [round(calls_b), round(calls_a)],
                    "by_own_time": by_own,
                    "project_by_cumulative": by_cum,
                    "by_calls": by_calls,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
