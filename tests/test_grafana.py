"""docs/grafana/tandem.json only asks for metrics a real node exposes on /metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from tests.conftest import REDIS
from tests.nodes import ROOT, cluster
from tests.workspace import Workspace

DASHBOARD = ROOT / "docs" / "grafana" / "tandem.json"
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool"}
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"), "gauge": ()}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (function names, label names and keywords removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping label lists
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        if following.startswith("(") or match.group() in _KEYWORDS:
            continue  # a function call or a keyword
        names.add(match.group())
    return names


def exposed_names(exposition: str) -> set[str]:
    """Every sample name /metrics exposes or declares (a declared histogram exposes its _bucket, _sum, _count)."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.add(name)
            names.update(name + suffix for suffix in _SUFFIXES.get(kind, ()))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_metric_names_are_found_in_promql() -> None:
    expr = 'histogram_quantile(0.99, sum by (le, route) (rate(tandem_http_request_seconds_bucket{job=~"$job"}[5m])))'
    assert metric_names(expr) == {"tandem_http_request_seconds_bucket"}
    assert metric_names("a_metric / clamp_min(b_metric{x='1'}, 1)") == {"a_metric", "b_metric"}


def test_every_dashboard_query_uses_metrics_a_node_exposes(database: tuple[str, Workspace], tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 20

    with cluster(tmp_path, database[0], REDIS, count=1) as (node,):
        exposition = httpx.get(node.http + "/metrics", timeout=10).text
    exposed = exposed_names(exposition)

    for expr in exprs:
        used = metric_names(expr)
        assert used, f"no metric in {expr!r}"
        assert used <= exposed, f"{expr!r} uses {sorted(used - exposed)}, which /metrics does not expose"
    # The panels the operators' runbook names are all there.
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("connections", "subscriptions", "fan-out", "send queue", "slow consumer", "broker reconnects",
                  "note rooms", "note size", "compactions", "http", "database"):  # fmt: skip
        assert topic in titles, topic
