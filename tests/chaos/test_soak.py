"""``python -m chaos soak``: a 20 s run with one fault, and the slope arithmetic it judges by.

The long soak (``--duration 1h``) is run by hand; its results are in docs/guides/chaos.md.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.soak.report import COLUMNS, MIN_JUDGED_S, Sample, pooled_slope, slopes

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.chaos
@pytest.mark.timeout(150)
def test_a_short_soak_with_one_fault_writes_its_csv_and_passes(
    toxiproxy_url: str, tmp_path: Path
) -> None:
    argv = [sys.executable, "-m", "chaos", "soak", "--duration", "20s", "--fault-every", "10s"]
    argv += ["--sample-every", "2", "--rate", "20", "--out", str(tmp_path), "--json"]
    env = {**os.environ, "TOXIPROXY_URL": toxiproxy_url}
    done = subprocess.run(
        argv, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=140
    )

    summary = json.loads(done.stdout)
    assert (done.returncode, summary["ok"]) == (0, True), done.stdout + done.stderr
    assert summary["faults"] == {"latency-50ms": 1}
    assert summary["verdict"]["lost"] == 0
    assert summary["verdict"]["jobs"] >= 300
    assert [s["series"] for s in summary["slopes"]] == [
        "rss supervisor",
        "rss worker1",
        "rss worker2",
        "rss reclaimer",
        "rss beat",
        "redis used_memory",
    ]
    assert not any(s["judged"] for s in summary["slopes"])  # 20 s is too short to judge
    with (tmp_path / "soak.csv").open() as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) - 1 >= 8
    assert {r[-1] for r in rows[1:]} == {"", "latency-50ms"}
    if summary["png"] is None:
        assert "no plot made" in done.stderr
        assert "pip install 'stem-jobs[soak]'" in done.stderr
    else:
        assert Path(summary["png"]).stat().st_size > 0


def test_the_slope_ignores_the_step_of_a_restarted_process() -> None:
    # Two flat processes, the second starting 30 MB lower: no growth within either.
    points = [(1, float(t), 80.0) for t in range(10)] + [(2, float(t), 50.0) for t in range(10, 20)]
    assert pooled_slope(points) == 0.0


def test_the_slope_of_steady_growth_is_found_across_restarts() -> None:
    points = [(1, float(t), 80.0 + 0.5 * t) for t in range(10)]
    points += [(2, float(t), 10.0 + 0.5 * t) for t in range(10, 20)]
    assert pooled_slope(points) == pytest.approx(0.5)


def _sample(t_s: float, mb: float) -> Sample:
    return Sample(t_s, 0.0, None, None, {"worker1": (7, mb)}, None, None, "")


def test_a_leak_after_warm_up_fails_and_a_short_run_is_not_judged() -> None:
    duration = 2 * MIN_JUDGED_S
    # 10 MB/h after a warm-up in which RSS jumps about.
    samples = [
        _sample(t, 40.0 + (t % 7 if t < 0.2 * duration else 10.0 * t / 3600.0))
        for t in range(0, int(duration), 5)
    ]
    worker = {s.series: s for s in slopes(samples, duration)}["rss worker1"]
    assert (worker.judged, worker.ok) == (True, False)
    assert worker.mb_per_h == pytest.approx(10.0, rel=0.01)
    short = {s.series: s for s in slopes(samples[:20], 100.0)}["rss worker1"]
    assert (short.judged, short.ok) == (False, True)
