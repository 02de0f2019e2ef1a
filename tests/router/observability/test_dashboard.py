"""The Grafana dashboard (deploy/grafana/tokenrouter-dashboard.json) is importable and queries
only metrics a real router exports, and every metric the router exports has a panel."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from router.runtime.engine import Router
from tests.conftest import loaded
from tests.router.observability.test_metrics import ask
from tests.router.observability.test_state import budget_config

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "tokenrouter-dashboard.json"
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')  # label values: never metric names
NAME = re.compile(r"\btokenrouter_[a-zA-Z0-9_]*")
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
    "info": ("_info",),
}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def queried(dashboard: dict[str, Any]) -> dict[str, set[str]]:
    """Metric name -> titles of the panels whose PromQL uses it."""
    names: dict[str, set[str]] = {}
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            for name in NAME.findall(QUOTED.sub('""', target["expr"])):
                names.setdefault(name, set()).add(panel["title"])
    return names


@pytest.fixture
async def exported() -> dict[str, str]:
    """Sample name -> its family's base name, from a real router that served one request
    (families with no sample yet, such as fallbacks, are exported too: by their type)."""
    router = await Router.create(loaded(budget_config()))
    try:
        [e async for e in router.generate(ask(tenant="acme"))]
        body, _ = router.metrics.render()
    finally:
        await router.aclose()
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        if family.name.endswith("_created"):
            continue  # prometheus_client's creation time of each counter and histogram child
        for suffix in SUFFIXES[family.type]:
            out[family.name + suffix] = family.name
        for sample in family.samples:
            out.setdefault(sample.name, family.name)
    return out


def test_the_dashboard_is_an_importable_grafana_dashboard():
    """The JSON has a title, uid, a Prometheus datasource variable every query uses, and
    unique panel ids."""
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"]
    (source,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert source["query"] == "prometheus"
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${" + source["name"] + "}", panel["title"]


async def test_every_metric_the_dashboard_queries_is_exported(exported):
    """Each tokenrouter_* name in a panel's expr is a sample name of the router's exposition
    (name, name_total, name_bucket/_sum/_count)."""
    names = queried(json.loads(DASHBOARD.read_text()))
    assert len(names) >= 15
    missing = {name: sorted(titles) for name, titles in names.items() if name not in exported}
    assert missing == {}


async def test_every_exported_metric_has_a_panel(exported):
    """Each metric family the router exports is queried by at least one panel."""
    used = {exported[name] for name in queried(json.loads(DASHBOARD.read_text()))}
    assert set(exported.values()) - used == set()
