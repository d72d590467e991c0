"""Stopping: reverse order, SIGKILL after the stop timeout, no orphans, rolling restarts."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import trio

from supervisor import ChildState, SupervisorState, read_status
from supervisor.status import SupervisorStatus
from tests.supervisor.helpers import (
    REPO_ROOT,
    RUN_SUPERVISOR,
    WAIT_S,
    gone,
    lines_of,
    running,
    spec,
    stats,
    supervising,
    tree,
    wait_ready,
    wait_until,
    who_said,
)


async def test_stopping_stops_children_in_reverse_start_order() -> None:
    specs = [spec("first", "announce"), spec("second", "announce"), spec("third", "announce")]

    async with supervising(specs) as (_, output):
        await wait_ready(output, "first.1", "second.1", "third.1")

    assert who_said(output, "TERM") == ["third.1", "second.1", "first.1"]


async def test_a_child_ignoring_sigterm_is_killed_after_its_stop_timeout_with_its_grandchild() -> (
    None
):
    stubborn = spec("stubborn", "stubborn", stop_timeout_s=0.5)

    async with supervising([stubborn]) as (supervisor, output):
        await wait_ready(output, "stubborn.1")
        pid = stats(supervisor, "stubborn.1").pid
        assert pid is not None
        await wait_until(lambda: len(tree(pid)) == 2, "the grandchild")
        processes = tree(pid)

    assert [gone(p) for p in processes] == [True, True]
    record = stats(supervisor, "stubborn.1")
    assert (record.state, record.last_exit) == (ChildState.STOPPED, -signal.SIGKILL)


async def test_cancelling_serve_still_stops_every_child_and_its_group() -> None:
    specs = [spec("a", "family"), spec("b", "announce", replicas=2)]
    processes: list[psutil.Process] = []

    with trio.CancelScope() as scope:
        async with supervising(specs) as (supervisor, output):
            await wait_ready(output, "a.1", "b.1", "b.2")
            a_pid = stats(supervisor, "a.1").pid
            assert a_pid is not None
            await wait_until(lambda: len(tree(a_pid)) == 2, "a's grandchild")
            processes = [*tree(a_pid), psutil.Process(stats(supervisor, "b.1").pid)]
            scope.cancel()
            await trio.sleep_forever()

    assert scope.cancelled_caught
    assert [gone(p) for p in processes] == [True, True, True]
    assert lines_of(output, "b.1")[-1] == "TERM"


async def test_sighup_restarts_the_children_one_at_a_time_in_start_order() -> None:
    specs = [spec("a", "announce", replicas=2), spec("b", "announce")]

    async with supervising(specs, handle_signals=True) as (supervisor, output):
        await wait_ready(output, "a.1", "a.2", "b.1")
        os.kill(os.getpid(), signal.SIGHUP)
        labels = ["a.1", "a.2", "b.1"]
        await wait_until(
            lambda: all(running(supervisor, label, restarts=1) for label in labels),
            "every child restarted",
        )
        reasons = {s.last_reason for s in supervisor.statistics()}

    assert reasons == {"rolling restart"}
    events = lines_of(output, "supervisor")
    rolling = events[events.index("received SIGHUP") :]
    steps = [e.split(" (")[0] for e in rolling if e.startswith("stopping") or "started" in e]
    assert steps[:6] == [
        "stopping a.1",
        "a.1 started",
        "stopping a.2",
        "a.2 started",
        "stopping b.1",
        "b.1 started",
    ]


async def test_request_rolling_restart_is_not_counted_against_the_intensity() -> None:
    from supervisor import RestartIntensity

    async with supervising([spec("a", "sleep")], intensity=RestartIntensity(0, 60)) as (
        supervisor,
        _,
    ):
        for round_ in range(1, 3):
            supervisor.request_rolling_restart()
            await wait_until(lambda: running(supervisor, "a.1", restarts=round_), "restarted")  # noqa: B023


async def wait_for_status(
    path: Path, predicate_what: str, running_children: int
) -> SupervisorStatus:
    """Poll the status file until ``running_children`` children run."""
    found: list[SupervisorStatus] = []

    def ready() -> bool:
        try:
            status = read_status(path)
        except (OSError, ValueError):
            return False
        alive = [c for c in status.children if c.state is ChildState.RUNNING]
        found[:] = [status]
        return len(alive) == running_children

    await wait_until(ready, predicate_what)
    return found[0]


@contextlib.asynccontextmanager
async def supervisor_process(
    tmp_path: Path, *modes: str, stop_timeout_s: float = 5.0
) -> AsyncIterator[tuple[trio.Process, Path, SupervisorStatus]]:
    """``children/run_supervisor.py`` with one child per mode, once they all run."""
    status_path = tmp_path / "status.json"
    process = await trio.lowlevel.open_process(
        [sys.executable, RUN_SUPERVISOR, str(status_path), *modes],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "STOP_TIMEOUT_S": str(stop_timeout_s)},
    )
    try:
        status = await wait_for_status(status_path, "children running", len(modes))
        yield process, status_path, status
    finally:
        process.kill()
        with trio.CancelScope(shield=True), trio.fail_after(WAIT_S):
            await process.wait()
        assert process.stdout is not None
        await process.stdout.aclose()


async def test_sigterm_to_a_supervisor_process_stops_its_children_and_exits_zero(
    tmp_path: Path,
) -> None:
    async with supervisor_process(tmp_path, "announce", "announce") as (
        process,
        status_path,
        status,
    ):
        children = [psutil.Process(c.pid) for c in status.children if c.pid]
        await wait_until(
            lambda: all(len(c.children()) == 0 and c.cmdline() for c in children), "children up"
        )
        assert process.stdout is not None
        output = b""
        with trio.fail_after(WAIT_S):
            while output.count(b"| ready") < 2:
                output += await process.stdout.receive_some()
            process.send_signal(signal.SIGTERM)
            async for chunk in process.stdout:
                output += chunk
            returncode = await process.wait()

    assert returncode == 0
    assert [gone(c) for c in children] == [True, True]
    assert who_said(output.decode(), "TERM") == ["c1.1", "c0.1"]
    final = read_status(status_path)
    assert (final.state, {c.state for c in final.children}) == (
        SupervisorState.STOPPED,
        {ChildState.STOPPED},
    )


async def test_a_sigkilled_supervisor_takes_its_children_with_it(tmp_path: Path) -> None:
    async with supervisor_process(tmp_path, "family pdeathsig", "sleep") as (process, _, status):
        (family_pid, sleep_pid) = [c.pid for c in status.children]
        assert family_pid is not None and sleep_pid is not None
        await wait_until(lambda: len(tree(family_pid)) == 2, "the grandchild")
        processes = [*tree(family_pid), psutil.Process(sleep_pid)]

        process.kill()
        with trio.fail_after(WAIT_S):
            await process.wait()
        try:
            # Both children die of PDEATHSIG; the grandchild of its parent's death.
            await wait_until(lambda: all(gone(p) for p in processes), "every child gone", 10.0)
        finally:
            for survivor in [p for p in processes if not gone(p)]:
                survivor.kill()  # orphans are no longer ours to reap; do not leak them


async def test_a_second_sigterm_during_the_shutdown_kills_every_child_at_once(
    tmp_path: Path,
) -> None:
    # With a stop timeout far beyond the test's deadline, only the second signal can end it.
    async with supervisor_process(tmp_path, "stubborn", stop_timeout_s=3600) as (
        process,
        status_path,
        status,
    ):
        (pid,) = [c.pid for c in status.children]
        assert pid is not None
        await wait_until(lambda: len(tree(pid)) == 2, "the grandchild")
        processes = tree(pid)
        assert process.stdout is not None
        output = b""
        with trio.fail_after(WAIT_S):
            while b"| ready" not in output:
                output += await process.stdout.receive_some()
            process.send_signal(signal.SIGTERM)
            while b"stopping c0.1" not in output:
                output += await process.stdout.receive_some()
            process.send_signal(signal.SIGTERM)
            async for chunk in process.stdout:
                output += chunk
            returncode = await process.wait()

    assert returncode == 0
    assert b"killing every child" in output
    assert [gone(p) for p in processes] == [True, True]
    assert read_status(status_path).children[0].last_exit == -signal.SIGKILL
