"""Opt-in (``-m peers``): ``python -m bench.peers --quick`` for stem and Huey, end to end.

Installs Huey into ``.venv-peers/huey/`` from its pinned requirements (needs PyPI) and
runs the quick benchmark for stem, Huey and the ceiling: each row must carry figures.
Asserts what was measured, never how fast.
"""

from __future__ import annotations

import pytest

from tests.bench.run import run_bench


@pytest.mark.peers
@pytest.mark.timeout(900)
def test_the_quick_run_measures_stem_a_peer_and_the_ceiling() -> None:
    setup = run_bench("bench.peers", "setup", "huey")
    assert setup.returncode == 0, f"installing Huey failed: {setup.stdout}{setup.stderr}"
    # A low rate: on a loaded machine a 200/s latency run could find a system saturated,
    # and the cell would then carry no latency to check.
    quick = ["--quick", "--only", "stem", "huey", "ceiling", "--no-write-docs", "--rate", "50"]
    run = run_bench("bench.peers", *quick, "--jobs", "300", "--seconds", "1", timeout_s=800)
    assert run.returncode == 0, run.stderr
    rows = {
        line.split(" | ")[0].lstrip("| "): line.split(" | ")
        for line in run.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| system")
    }
    assert set(rows) == {"stem", "Huey", "ceiling"}, run.stdout
    for name, cells in rows.items():
        drain1, drain2, single, _bulk, latency, rss = cells[2:8]
        assert drain1.endswith("/s") and drain2.endswith("x)"), (name, cells)
        assert single.endswith("/s") and latency.endswith("ms"), (name, cells)
        assert rss.rstrip(" |").endswith("MiB"), (name, cells)
    assert rows["Huey"][5] == "n/a (no bulk API)"
    assert rows["stem"][5].endswith("/s")
