"""Health checks: hung children (stale heartbeats) and bloated ones (RSS of the tree)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path

import psutil
import pytest

from supervisor import (
    HEARTBEAT_FILE_ENV,
    Backoff,
    FileHeartbeatProbe,
    RestartIntensity,
    touch_heartbeat,
    tree_rss_bytes,
)
from tests.supervisor.helpers import (
    gone,
    lines_of,
    running,
    spec,
    stats,
    supervising,
    tree,
    wait_until,
)

QUICK = Backoff(initial_s=0.05, factor=1.0, cap_s=0.05, jitter=0.0)
ROOMY = RestartIntensity(max_restarts=100, within_s=60.0)


def beats(output_lines: list[str]) -> int:
    return sum(1 for line in output_lines if line.startswith("beat "))


async def test_a_child_whose_heartbeat_goes_stale_is_killed_and_replaced() -> None:
    # 2 s: forty missed beats of 50 ms, so a loaded machine (CI on two cores) never makes
    # a healthy child look hung.
    beating = spec("beating", "heartbeat", heartbeat_timeout_s=2.0, backoff=QUICK)

    async with supervising([beating], intensity=ROOMY, health_interval_s=0.1) as (sup, output):
        # Beats for longer than the timeout (a line per 5 beats of 50 ms), no restart: healthy.
        await wait_until(lambda: beats(lines_of(output, "beating.1")) >= 9, "45 beats")
        assert stats(sup, "beating.1").restarts == 0
        pid = stats(sup, "beating.1").pid
        assert pid is not None
        hung = psutil.Process(pid)

        hung.send_signal(signal.SIGSTOP)  # alive but hung: it cannot act on SIGTERM
        await wait_until(lambda: running(sup, "beating.1", restarts=1), "a replacement")
        record = stats(sup, "beating.1")

    assert gone(hung)
    assert record.last_exit == -signal.SIGKILL
    assert record.last_reason is not None and record.last_reason.startswith("hung: no heartbeat")


async def test_a_child_that_never_beats_is_restarted_after_the_start_up_grace() -> None:
    silent = spec("silent", "sleep", heartbeat_timeout_s=0.3, backoff=QUICK)

    async with supervising([silent], intensity=ROOMY, health_interval_s=0.05) as (sup, _):
        await wait_until(lambda: running(sup, "silent.1", restarts=1), "a restart")
        reason = stats(sup, "silent.1").last_reason

    assert reason is not None and reason.startswith("hung")


class SwitchProbe:
    """A heartbeat probe the test flips by hand: proof that probes plug in."""

    def __init__(self) -> None:
        self.stale = False
        self.started: list[str] = []

    def child_env(self, label: str) -> Mapping[str, str]:
        return {"PROBE_LABEL": label}

    def child_started(self, label: str) -> None:
        self.started.append(label)
        self.stale = False

    def seconds_since_heartbeat(self, label: str) -> float:
        return 1000.0 if self.stale else 0.0


async def test_a_custom_heartbeat_probe_decides_when_a_child_is_hung() -> None:
    probe = SwitchProbe()
    child = spec("custom", "sleep", heartbeat_timeout_s=5.0, backoff=QUICK)

    async with supervising(
        [child], intensity=ROOMY, heartbeat_probe=probe, health_interval_s=0.05
    ) as (sup, _):
        await wait_until(lambda: running(sup, "custom.1"), "custom.1 running")
        probe.stale = True
        await wait_until(lambda: running(sup, "custom.1", restarts=1), "a restart")

    assert probe.started == ["custom.1", "custom.1"]


async def test_a_process_tree_over_max_rss_is_stopped_gracefully_and_restarted() -> None:
    # Child and grandchild hold 40 MB each: either alone is under the cap, the tree is not.
    hungry = spec("hungry", "memory", "40", max_rss_mb=70, backoff=QUICK)

    async with supervising([hungry], intensity=ROOMY, health_interval_s=0.1) as (sup, output):
        await wait_until(lambda: running(sup, "hungry.1", restarts=1), "a restart")
        record = stats(sup, "hungry.1")

    assert "TERM" in lines_of(output, "hungry.1")
    assert record.last_reason is not None and record.last_reason.startswith("memory: ")
    assert "> max_rss_mb 70" in record.last_reason


async def test_tree_rss_counts_the_descendants_too() -> None:
    async with supervising([spec("hungry", "memory", "30")]) as (sup, output):
        await wait_until(
            lambda: any(line.startswith("holding") for line in lines_of(output, "hungry.1")),
            "memory held",
        )
        pid = stats(sup, "hungry.1").pid
        assert pid is not None
        await wait_until(lambda: len(tree(pid)) == 2, "the grandchild")
        processes = tree(pid)
        await wait_until(
            lambda: processes[1].memory_info().rss > 30 * 2**20, "the grandchild's memory"
        )

        total = tree_rss_bytes(pid)
        alone = processes[0].memory_info().rss

    assert total >= alone + 30 * 2**20
    assert tree_rss_bytes(2**22 + 12345) == 0  # no such process


def test_touch_heartbeat_is_a_no_op_outside_a_supervisor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HEARTBEAT_FILE_ENV, raising=False)

    touch_heartbeat()


def test_the_file_probe_measures_the_age_of_the_last_touch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = FileHeartbeatProbe(str(tmp_path))
    probe.child_started("w.1")
    path = probe.path("w.1")
    monkeypatch.setenv(HEARTBEAT_FILE_ENV, path)
    long_ago = time.time() - 100
    os.utime(path, (long_ago, long_ago))
    probe._started["w.1"] = long_ago  # as if it had started long ago, without waiting

    stale_age = probe.seconds_since_heartbeat("w.1")
    touch_heartbeat()
    fresh_age = probe.seconds_since_heartbeat("w.1")

    assert (stale_age >= 99, fresh_age < 50) == (True, True)
    assert probe.child_env("w.1") == {HEARTBEAT_FILE_ENV: path}


def test_touch_heartbeat_recreates_a_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.1.heartbeat"
    monkeypatch.setenv(HEARTBEAT_FILE_ENV, str(path))

    touch_heartbeat()

    assert path.exists()
