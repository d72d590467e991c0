"""deploy/ through promtool: the alert rules load, their unit tests pass, and every
dashboard query parses as PromQL.

Opt-in (``-m promtool``): needs Debian's ``prometheus`` package for promtool
(``apt-get install prometheus``); without it the tests fail and say so, never skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.observe.test_deploy_dashboard import DASHBOARD, RULES, panels

pytestmark = pytest.mark.promtool

#: What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$queue": ".*"}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is not installed: apt-get install prometheus (Debian)"
    return subprocess.run(
        [tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_alert_rules_pass_promtool_check_rules(repo_root: Path) -> None:
    done = promtool("check", "rules", RULES.name, cwd=repo_root / RULES.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_alert_rules_pass_their_promtool_unit_tests(repo_root: Path) -> None:
    tests = RULES.with_name("stem-alerts.test.yml")
    done = promtool("test", "rules", tests.name, cwd=repo_root / RULES.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_dashboard_query_parses_as_promql(repo_root: Path, tmp_path: Path) -> None:
    dashboard = json.loads((repo_root / DASHBOARD).read_text())
    exprs = [t["expr"] for p in panels(dashboard) for t in p["targets"]]
    for variable, value in GRAFANA_VARIABLES.items():
        exprs = [e.replace(variable, value) for e in exprs]
    # As recording rules, so that `check rules` parses each one (JSON is valid YAML).
    rules = [{"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)]
    (tmp_path / "queries.yml").write_text(
        json.dumps({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    done = promtool("check", "rules", "queries.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in done.stdout


def test_the_sample_prometheus_config_loads_the_alert_rules(
    repo_root: Path, tmp_path: Path
) -> None:
    # Laid out as samples/otlp/docker-compose.yml mounts it: the rules beside the config.
    (tmp_path / "rules").mkdir()
    shutil.copy(repo_root / "samples/otlp/prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copy(repo_root / RULES, tmp_path / "rules" / RULES.name)
    done = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout
