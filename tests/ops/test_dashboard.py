"""deploy/grafana/creatorcommerce.json: it loads, every panel queries the Prometheus data
source chosen in its variable, and every metric its queries name is one a real scrape of
/metrics has (and every family the scrape has is on some panel)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers import scrape

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "creatorcommerce.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def _panels(panels):
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


@pytest.mark.redis
@pytest.mark.django_db
def test_the_dashboard_queries_only_metrics_a_scrape_has(client):
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"

    families = {name: kind for name, kind in scrape(client).families.items() if name.startswith("cc_")}
    names = {name + suffix for name, kind in families.items() for suffix in SUFFIXES[kind]}
    queried = set()
    graphs = [p for p in _panels(dashboard["panels"]) if p["type"] != "row"]
    assert len(graphs) >= 15
    for panel in graphs:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\bcc_[a-z0-9_]+", target["expr"]))
            assert used, (panel["title"], target["expr"])
            assert used <= names, (panel["title"], used - names)
            queried |= used
    for name in variables["job"]["definition"], variables["job"]["query"]["query"]:
        assert set(re.findall(r"\bcc_[a-z0-9_]+", name)) <= names
    # Every figure /metrics has is on the dashboard.
    shown = {name for name in families if any(q == name or q.startswith(name + "_") for q in queried)}
    assert shown == set(families)
