"""deploy/: the Grafana dashboard and the alert rules speak only the documented families.

A family renamed in stem/observe/ but not in deploy/ leaves a panel blank and an alert
silent without any error, so every PromQL expression here is read for the metric names it
uses, and each must be a family of docs/reference/metrics.md's table (a histogram's
``_bucket``/``_sum``/``_count`` series count as their family). Whether the expressions
parse is promtool's job (tests/observe/test_deploy_rules.py, opt-in).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DASHBOARD = Path("deploy/grafana/stem-dashboard.json")
RULES = Path("deploy/prometheus/stem-alerts.yml")
METRICS_DOC = Path("docs/reference/metrics.md")

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
#: A name not followed by "(" (that would be a function, or a grouping stripped before).
_NAME = re.compile(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
_HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


#: A ``sum`` straight over a family's series (through rate/increase/delta at most).
_DIRECT_SUM = re.compile(
    r"\bsum\s*(?:(?:by|without)\s*\([^)]*\)\s*)?\(\s*"
    r"(?:(?:rate|irate|increase|delta)\s*\(\s*)?(stem_[a-z0-9_]+)"
)
#: The only family each endpoint reports for itself (the others are the deployment's,
#: the same from every endpoint).
PER_ENDPOINT = {"stem_supervisor_restarts_total"}


def summed_twice(expr: str) -> set[str]:
    """Deployment-wide families that ``expr`` adds up without first taking one copy of
    each series (``max by`` its labels): with two endpoints scraped, they count double."""
    return {name for name in _DIRECT_SUM.findall(expr) if name not in PER_ENDPOINT}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (label matchers, ranges, strings,
    groupings, functions and keywords left out; Grafana's ``$variables`` too)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\$\w+", " ", text)
    return {n for n in _NAME.findall(text) if n.lower() not in _KEYWORDS}


def documented_families(doc: str) -> dict[str, str]:
    """Family name -> type, from the table of docs/reference/metrics.md."""
    rows = re.findall(r"^\| `(stem_[a-z0-9_]+)` \| (\w+) \|", doc, re.MULTILINE)
    return dict(rows)


def undocumented(names: set[str], families: dict[str, str]) -> set[str]:
    """The names that are not a series of a documented family: a gauge's or counter's
    name, or a histogram's ``_bucket``/``_sum``/``_count`` (its bare name is no series)."""

    def known(name: str) -> bool:
        if families.get(name) not in (None, "histogram"):
            return True
        for suffix in _HISTOGRAM_SERIES:
            base = name.removesuffix(suffix)
            if base != name and families.get(base) == "histogram":
                return True
        return False

    return {n for n in names if not known(n)}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that shows data (rows and the panels folded inside them included)."""
    for panel in dashboard["panels"]:
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def rule_exprs(text: str) -> dict[str, str]:
    """Alert name -> expression of a rules file (``expr: ...`` or a ``expr: |`` block)."""
    exprs: dict[str, str] = {}
    lines = text.splitlines()
    name = ""
    for i, line in enumerate(lines):
        if m := re.match(r"\s*- (?:alert|record): (\S+)", line):
            name = m.group(1)
        elif m := re.match(r"(\s*)expr: (.*)$", line):
            if m.group(2).strip() != "|":
                exprs[name] = m.group(2)
                continue
            indent, block = len(m.group(1)), []
            for more in lines[i + 1 :]:
                if more.strip() and len(more) - len(more.lstrip()) <= indent:
                    break
                block.append(more.strip())
            exprs[name] = " ".join(block)
    return exprs


@pytest.fixture
def families(repo_root: Path) -> dict[str, str]:
    return documented_families((repo_root / METRICS_DOC).read_text())


@pytest.fixture
def dashboard(repo_root: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((repo_root / DASHBOARD).read_text())
    return doc


def test_the_metric_name_reader_sees_names_and_not_functions_labels_or_variables() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, queue) (rate(stem_job_run_duration_seconds_bucket"
        '{queue=~"$queue"}[$__rate_interval]))) / on (queue) stem_up offset 5m '
        'unless max without (worker) (stem_x_total{state="ready"}) > 1e3'
    )
    assert metric_names(expr) == {"stem_job_run_duration_seconds_bucket", "stem_up", "stem_x_total"}


def test_a_histogram_is_queried_through_its_bucket_sum_and_count_series() -> None:
    families = {"h_seconds": "histogram", "g": "gauge"}
    names = {"h_seconds", "h_seconds_bucket", "h_seconds_count", "g", "g_bucket", "x"}
    assert undocumented(names, families) == {"h_seconds", "g_bucket", "x"}


def test_the_family_table_is_read_from_the_metrics_reference(families: dict[str, str]) -> None:
    assert families["stem_queue_jobs"] == "gauge"
    assert families["stem_jobs_processed_total"] == "counter"
    assert families["stem_job_run_duration_seconds"] == "histogram"


def test_every_dashboard_query_uses_only_documented_families(
    dashboard: dict[str, Any], families: dict[str, str]
) -> None:
    used = {
        name
        for panel in panels(dashboard)
        for target in panel["targets"]
        for name in metric_names(target["expr"])
    }
    assert undocumented(used, families) == set()
    # The list: throughput, latency, backlog and its age, DLQ, workers, in flight,
    # restarts.
    assert {
        "stem_jobs_processed_total",
        "stem_job_run_duration_seconds_bucket",
        "stem_job_wait_duration_seconds_bucket",
        "stem_queue_jobs",
        "stem_queue_oldest_ready_age_seconds",
        "stem_workers_alive",
        "stem_worker_jobs_held",
        "stem_supervisor_restarts_total",
    } <= used


def test_every_dashboard_panel_has_a_title_a_unit_and_a_query(dashboard: dict[str, Any]) -> None:
    missing = [
        (panel.get("id"), what)
        for panel in panels(dashboard)
        for what, ok in (
            ("title", bool(panel.get("title"))),
            ("unit", bool(panel.get("fieldConfig", {}).get("defaults", {}).get("unit"))),
            ("query", all(t.get("expr") for t in panel.get("targets") or [{}])),
        )
        if not ok
    ]
    assert missing == []


def test_dashboard_panels_use_the_datasource_variable_so_it_imports_anywhere(
    dashboard: dict[str, Any],
) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    sources = {json.dumps(p["datasource"], sort_keys=True) for p in panels(dashboard)}
    assert sources == {json.dumps({"type": "prometheus", "uid": "${datasource}"}, sort_keys=True)}


def test_every_alert_uses_only_documented_families(
    repo_root: Path, families: dict[str, str]
) -> None:
    exprs = rule_exprs((repo_root / RULES).read_text())
    used = {name: metric_names(expr) for name, expr in exprs.items()}
    assert {name: undocumented(names, families) for name, names in used.items()} == {
        name: set() for name in exprs
    }
    assert {
        "StemBacklogOld",
        "StemJobFailureRatioHigh",
        "StemDeadLetterQueueGrowing",
        "StemNoWorkerHeartbeat",
        "StemReclaimerMissing",
        "StemLeasesExpireUnreclaimed",
        "StemRestartStorm",
    } <= set(exprs)


def test_the_double_count_reader_flags_a_direct_sum_and_passes_one_over_max() -> None:
    assert summed_twice("sum by (queue) (rate(stem_jobs_failed_total[5m]))") == {
        "stem_jobs_failed_total"
    }
    assert summed_twice("sum(max by (queue) (stem_queue_jobs))") == set()
    assert summed_twice("sum by (actor) (increase(stem_supervisor_restarts_total[15m]))") == set()


def test_no_query_counts_a_series_twice_when_several_endpoints_are_scraped(
    repo_root: Path, dashboard: dict[str, Any]
) -> None:
    exprs = [t["expr"] for p in panels(dashboard) for t in p["targets"]]
    exprs += rule_exprs((repo_root / RULES).read_text()).values()
    assert [e for e in exprs if summed_twice(e)] == []
