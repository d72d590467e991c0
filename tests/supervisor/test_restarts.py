"""Restart types, strategies, backoff between restarts and giving up."""

from __future__ import annotations

import io
import itertools
import os
from pathlib import Path

import psutil
import pytest
import trio

from supervisor import (
    Backoff,
    ChildSpec,
    ChildState,
    RestartIntensity,
    RestartType,
    Strategy,
    Supervisor,
    SupervisorGaveUp,
)
from tests.supervisor.helpers import (
    WAIT_S,
    gone,
    running,
    spec,
    stats,
    supervising,
    tree,
    wait_ready,
    wait_until,
)

QUICK = Backoff(initial_s=0.05, factor=1.0, cap_s=0.05, jitter=0.0)
ROOMY = RestartIntensity(max_restarts=100, within_s=60.0)


async def test_a_child_that_crashes_is_restarted_with_growing_delays(tmp_path: Path) -> None:
    log = tmp_path / "starts"
    backoff = Backoff(initial_s=0.1, factor=2.0, cap_s=10.0, jitter=0.0)
    crasher = spec("crash", "crash", "3", env={"START_LOG": str(log)}, backoff=backoff)

    async with supervising([crasher], intensity=ROOMY) as (supervisor, output):
        await wait_until(
            lambda: log.exists() and len(log.read_text().split()) >= 4, "four starts logged"
        )
        record = stats(supervisor, "crash.1")

    announced = [line for line in output.getvalue().splitlines() if "restarting in" in line]
    assert [line.rsplit(" in ", 1)[1] for line in announced[:3]] == [
        "0.10 s",
        "0.20 s",
        "0.40 s",
    ]
    starts = [float(line) for line in log.read_text().split()]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # Delays are lower bounds: a busy machine only makes the gaps longer.
    assert [gap >= delay for gap, delay in zip(gaps, [0.1, 0.2, 0.4], strict=False)] == [True] * 3
    assert (record.last_exit, record.last_reason) == (3, "exited with code 3")


async def test_exceeding_the_intensity_gives_up_naming_the_child_and_leaves_no_process(
    tmp_path: Path,
) -> None:
    go = tmp_path / "go"
    sleeper = spec("steady", "family")
    crasher = spec("flaky", "crash-when", str(go), "1", backoff=QUICK)
    supervisor = Supervisor([sleeper, crasher], intensity=RestartIntensity(2, 60.0))
    processes: list[psutil.Process] = []

    async def serve_and_crash_once_the_tree_is_known() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.serve)
            await wait_until(lambda: running(supervisor, "steady.1"), "steady.1 running")
            pid = stats(supervisor, "steady.1").pid
            assert pid is not None
            await wait_until(lambda: len(tree(pid)) == 2, "its grandchild")
            processes.extend(tree(pid))
            go.touch()

    with trio.fail_after(WAIT_S), pytest.raises(ExceptionGroup) as caught:
        await serve_and_crash_once_the_tree_is_known()

    (gave_up,) = caught.value.exceptions
    assert isinstance(gave_up, SupervisorGaveUp)
    assert (gave_up.child, gave_up.max_restarts) == ("flaky.1", 2)
    assert "flaky.1" in str(gave_up) and "2 restarts within 60 s" in str(gave_up)
    assert [gone(p) for p in processes] == [True, True]
    assert {s.state for s in supervisor.statistics()} == {ChildState.STOPPED}


async def test_a_command_that_cannot_start_counts_as_a_failure() -> None:
    missing = ChildSpec("missing", ["/nonexistent/command"], backoff=QUICK)
    supervisor = Supervisor([missing], intensity=RestartIntensity(1, 60.0), output=io.StringIO())

    with trio.fail_after(WAIT_S), pytest.raises(SupervisorGaveUp) as caught:
        await supervisor.serve()

    assert caught.value.child == "missing.1"
    assert caught.value.reason.startswith("failed to start")


async def test_one_for_one_restarts_only_the_child_that_died() -> None:
    specs = [spec("a", "sleep"), spec("b", "sleep", replicas=2), spec("c", "sleep")]

    async with supervising(specs, intensity=ROOMY) as (supervisor, _):
        await wait_until(lambda: all(s.pid for s in supervisor.statistics()), "all running")
        before = {s.label: s.pid for s in supervisor.statistics()}
        psutil.Process(before["b.1"]).kill()
        await wait_until(lambda: running(supervisor, "b.1", restarts=1), "b.1 restarted")
        after = {s.label: (s.pid, s.restarts) for s in supervisor.statistics()}
        assert stats(supervisor, "b.1").last_exit == -9

    assert after["b.1"][0] != before["b.1"]
    assert {k: v for k, v in after.items() if k != "b.1"} == {
        "a.1": (before["a.1"], 0),
        "b.2": (before["b.2"], 0),
        "c.1": (before["c.1"], 0),
    }


async def test_rest_for_one_restarts_the_children_started_after_the_one_that_died() -> None:
    specs = [
        spec("config", "sleep"),
        spec("redis", "sleep", backoff=QUICK),
        spec("worker", "announce", replicas=2),
        spec("beat", "sleep"),
    ]

    async with supervising(specs, strategy=Strategy.REST_FOR_ONE, intensity=ROOMY) as (
        supervisor,
        output,
    ):
        await wait_until(lambda: all(s.pid for s in supervisor.statistics()), "all running")
        await wait_ready(output, "worker.1", "worker.2")
        before = {s.label: s.pid for s in supervisor.statistics()}
        psutil.Process(before["redis.1"]).kill()
        labels = ["redis.1", "worker.1", "worker.2", "beat.1"]
        await wait_until(
            lambda: all(running(supervisor, label, restarts=1) for label in labels),
            "redis and everything after it restarted",
        )
        after = {s.label: (s.pid, s.restarts) for s in supervisor.statistics()}
        beat_reason = stats(supervisor, "beat.1").last_reason

    assert beat_reason == "stopped to restart after redis.1"
    assert after["config.1"] == (before["config.1"], 0)
    assert all(after[label][0] != before[label] for label in labels)
    # The dependents were stopped gracefully, not killed.
    assert output.getvalue().count("worker.1   | TERM") >= 1


async def test_rest_for_one_leaves_earlier_children_and_peers_alone() -> None:
    specs = [spec("redis", "sleep"), spec("worker", "sleep", replicas=2, backoff=QUICK)]

    async with supervising(specs, strategy=Strategy.REST_FOR_ONE, intensity=ROOMY) as (
        supervisor,
        _,
    ):
        await wait_until(lambda: all(s.pid for s in supervisor.statistics()), "all running")
        before = {s.label: s.pid for s in supervisor.statistics()}
        psutil.Process(before["worker.1"]).kill()
        await wait_until(lambda: running(supervisor, "worker.1", restarts=1), "worker.1 back")
        after = {s.label: s.pid for s in supervisor.statistics()}

    assert (after["redis.1"], after["worker.2"]) == (before["redis.1"], before["worker.2"])


async def test_a_transient_child_is_restarted_after_a_failure_but_not_after_success(
    tmp_path: Path,
) -> None:
    transient = RestartType.TRANSIENT
    specs = [
        spec("ok", "crash", "0", restart=transient, backoff=QUICK),
        spec("once", "fail-once", str(tmp_path / "marker"), restart=transient, backoff=QUICK),
    ]

    async with supervising(specs, intensity=ROOMY) as (supervisor, _):
        await wait_until(
            lambda: {s.state for s in supervisor.statistics()} == {ChildState.EXITED},
            "both exited for good",
        )

    ok, once = supervisor.statistics()
    assert (ok.restarts, ok.last_exit) == (0, 0)
    assert (once.restarts, once.last_exit) == (1, 0)


async def test_a_temporary_child_is_never_restarted_even_after_a_failure() -> None:
    specs = [spec("oneshot", "crash", "2", restart=RestartType.TEMPORARY, backoff=QUICK)]

    async with supervising(specs, intensity=ROOMY) as (supervisor, _):
        await wait_until(
            lambda: stats(supervisor, "oneshot.1").state is ChildState.EXITED, "oneshot done"
        )

    record = stats(supervisor, "oneshot.1")
    assert (record.restarts, record.last_exit, record.pid) == (0, 2, None)


def test_spawn_of_a_missing_command_raises_os_error_and_leaks_no_descriptor() -> None:
    from supervisor.process import spawn

    before = len(os.listdir("/proc/self/fd"))

    with pytest.raises(OSError):
        spawn(["/nonexistent/command"], dict(os.environ))
    with pytest.raises(OSError):
        spawn(["true"], dict(os.environ), cwd="/nonexistent/directory")

    assert len(os.listdir("/proc/self/fd")) == before


async def test_under_rest_for_one_later_children_wait_for_an_earlier_one_that_cannot_start() -> (
    None
):
    specs = [
        ChildSpec("dependency", ["/nonexistent/command"], backoff=QUICK),
        spec("dependent", "sleep"),
    ]

    async with supervising(specs, strategy=Strategy.REST_FOR_ONE, intensity=ROOMY) as (
        supervisor,
        _,
    ):
        await wait_until(lambda: stats(supervisor, "dependency.1").restarts >= 2, "retries")
        dependent = stats(supervisor, "dependent.1")

    assert (dependent.state, dependent.pid, dependent.started_at) == (
        ChildState.PENDING,
        None,
        None,
    )
