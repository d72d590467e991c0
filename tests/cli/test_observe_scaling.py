"""``stem observe scaling`` on a real Redis (the advice itself: tests/observe)."""

from __future__ import annotations

import json

from stem import Stem
from tests.cli.conftest import Invoke


def test_without_workers_an_empty_namespace_needs_none(stem: Invoke) -> None:
    result = stem("observe", "scaling", "--interval", "0.5", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["load"]["workers"], doc["advice"]["recommended_workers"]) == (0, 0)


def test_waiting_jobs_without_workers_need_one(stem: Invoke, app: Stem) -> None:
    app.enqueue("t.some_task", [1])
    result = stem("observe", "scaling", "--interval", "0.5")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("no live workers: jobs are waiting\n")
    assert "ready 1 -> 1" in result.output
