"""``python -m bench.peers.cpu`` measures stem and the ceiling, full and paced.

Both run from the repository's ``.venv`` (no peer environment needed). Asserts that every
row carries figures, never how fast or how costly.
"""

from __future__ import annotations

import pytest

from tests.bench.run import run_bench


@pytest.mark.timeout(300)
def test_the_cpu_bench_reports_each_system_full_and_paced() -> None:
    argv = ["--jobs", "300", "--rates", "0,1000", "--runs", "1", "--only", "stem", "ceiling"]
    run = run_bench("bench.peers.cpu", *argv, timeout_s=280)
    assert run.returncode == 0, run.stderr
    rows = [line.split() for line in run.stdout.splitlines() if line.startswith(("stem", "ceil"))]
    assert [(r[0], r[1]) for r in rows] == [
        ("stem", "full"),
        ("ceiling", "full"),
        ("stem", "1,000/s"),
        ("ceiling", "1,000/s"),
    ], run.stdout
    for row in rows:
        rate, workers, user, sys_, redis, together = row[2], row[3], row[4], row[6], row[7], row[8]
        assert float(rate.replace(",", "")) > 0, row
        assert abs(int(workers) - int(user.strip("(")) - int(sys_.strip(")"))) <= 1, row  # rounding
        assert int(redis) >= 0 and int(together) >= int(workers), row
