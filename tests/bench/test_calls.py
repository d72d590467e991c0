"""``python -m bench.calls`` counts a worker's calls and Redis commands per job.

Asserts what is counted (the groups, a job's own ``INCR``), never how many.
"""

from __future__ import annotations

import pytest

from tests.bench.run import run_bench


@pytest.mark.timeout(300)
def test_the_call_count_names_the_worker_parts_and_the_job_alone() -> None:
    run = run_bench("bench.calls", "--jobs", "200", "--runs", "1", "--top", "5", timeout_s=280)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "of which the job itself (one INCR called directly):" in out, out
    groups = {
        line.split()[0]: float(line.split()[-1])
        for line in out.split("group")[1].split("function (Python)")[0].splitlines()
        if line and not line.startswith(("-", " "))
    }
    for group in ("stem/worker", "trio", "redis", "C", "Redis"):
        assert groups.get(group, 0) > 0, (group, out)
    assert groups["Redis"] >= 1, out  # the job's own INCR, at least, per job
