"""The benchmark suite runs end to end: ``bench/run.py --smoke`` (tiny counts, every scenario)
exits 0 and writes well-formed results. No timing is asserted: the benchmarks measure, they
never fail on a figure.

It needs the real services (the servers it starts use PostgreSQL and Redis) but not the test
database: the run creates its own ``cc_bench_*`` database on the same PostgreSQL server and
drops it, and uses an empty Redis database index that it flushes afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _numbers(*values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def test_bench_smoke_runs_every_scenario_and_writes_results(tmp_path):
    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(out)],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=15 * 60,  # above the smoke profile's own max_minutes
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    data = json.loads(out.read_text())

    assert data["profile"] == "smoke"
    assert "error" not in data
    assert {"machine", "settings", "parameters", "scenarios", "ratios", "duration_seconds"} <= data.keys()
    machine = data["machine"]
    assert _numbers(machine["nproc"], machine["memory_gb"])
    expected_versions = {"python", "django", "daphne", "uvicorn", "channels-redis", "postgresql", "redis"}
    assert expected_versions <= machine["versions"].keys()
    assert data["settings"]["DEBUG"] == "0"
    assert data["settings"]["SECRET_KEY"] != os.environ.get("SECRET_KEY")

    scenarios = data["scenarios"]
    assert {"ceiling", "buy", "buy3", "pgbench", "fanout", "baseline"} <= scenarios.keys()
    for server in ("daphne", "uvicorn"):
        ceiling = scenarios["ceiling"][server]
        assert _numbers(ceiling["rps"], *ceiling["latency_ms"].values())
        assert scenarios["buy3"][server]["lines"] == 3
        rates = scenarios["buy"][server]["rates"] + scenarios["buy3"][server]["rates"]
        assert len(rates) == 2
        for rate in rates:
            assert _numbers(rate["offered_rps"], rate["ok_rps"], rate["sent"])
            assert set(rate["latency_ms"]) == {"p50", "p95", "p99"}
            assert isinstance(rate["statuses"], dict)
            check = rate["check"]
            assert {"units_sold_total", "paid_units_total", "available", "sold_equals_paid"} <= check.keys()
            assert check["available"] >= 0  # never oversold: a correctness check, not a timing one
            assert rate["statuses"].get("201", 0) > 0

    assert all(_numbers(run["tps"]) for run in scenarios["pgbench"]["runs"])
    steps = [s for layer in ("core", "pubsub") for s in scenarios["fanout"][layer]["steps"]]
    steps += scenarios["baseline"]["steps"]
    # Each of the three at the profile's cadence and at the overload's (the largest step only).
    assert sorted(s["changes_per_s"] for s in steps) == [20, 20, 20, 40, 40, 40]
    for step in steps:
        assert _numbers(step["viewers"], step["open_at_end"], step["messages"], step["on_final"])
        assert set(step["latency_ms"]) == {"p50", "p95", "p99"}
        assert "rss_kb_per_connection" in step
    assert isinstance(data["ratios"], dict)

    # Everything it made is gone: its database is dropped.
    import psycopg

    database = data["settings"]["DATABASE_URL"].rsplit("/", 1)[1]
    admin_url = data["settings"]["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    if "***" not in admin_url:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            left = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        assert left is None


@pytest.mark.haproxy
def test_stampede_smoke_runs_every_scenario_on_one_process_and_on_two_behind_the_proxy(tmp_path):
    """``bench/stampede.py --smoke``: capacity, stampede, overload and the reconnect storm on
    one daphne and on two behind HAProxy (deploy/haproxy/haproxy.cfg), answers classed, the
    database checked. Again no timing is asserted, only that every figure is there and that
    nothing was oversold."""
    out = tmp_path / "stampede.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "stampede.py"), "--smoke", "--out", str(out)],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=15 * 60,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    data = json.loads(out.read_text())
    assert data["profile"] == "smoke" and "error" not in data
    assert set(data["topologies"]) == {"one", "two"}
    assert data["topologies"]["two"]["processes"] == 2 and data["topologies"]["two"]["proxy"]
    for name, top in data["topologies"].items():
        for scenario in ("capacity", "stampede", "overload"):
            run = top[scenario]
            assert run["classes"]["201"]["count"] > 0, (name, scenario, run["codes"])
            for figures in run["classes"].values():
                assert {"count", "p50", "p95", "p99", "max"} <= figures.keys()
            assert run["check"]["oversold"] == 0 and run["check"]["sold_equals_paid"], (name, scenario, run["check"])
            assert _numbers(*(v for k, v in run["cpu_seconds"].items()))
        stampede = top["stampede"]
        deal_units = data["parameters"]["deal_units"]
        # More taps than units: never more sold than the deal holds, each unit paid once.
        assert 0 < stampede["check"]["units_sold"] == stampede["check"]["paid_units"] <= deal_units
        assert stampede["tappers"]["count"] == data["parameters"]["taps"]
        assert sum(o["count"] for o in stampede["tappers"]["outcomes"].values()) == data["parameters"]["taps"]
        storm = top["storm"]
        assert storm["lost"] == storm["viewers"] == data["parameters"]["viewers"]
        assert _numbers(storm["restart_s"], storm["final_value"])
        assert set(storm["buys"]["classes"]) <= {"201", "409", "503", "429", "other", "error", "timeout"}
    assert "most buys/s two / one" in data["ratios"]
    assert all(len(row) == 3 for row in data["targets"])
