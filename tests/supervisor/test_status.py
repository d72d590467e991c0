"""What callers see: statistics, the status file, children's environment and output."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import trio

from supervisor import (
    ChildState,
    RestartIntensity,
    RestartType,
    Supervisor,
    SupervisorState,
    read_status,
)
from tests.supervisor.helpers import (
    WAIT_S,
    lines_of,
    running,
    spec,
    stats,
    supervising,
    wait_until,
)


async def test_statistics_report_pid_state_restarts_uptime_and_last_exit() -> None:
    before = time.time()

    async with supervising([spec("w", "sleep", replicas=2)]) as (supervisor, _):
        await wait_until(lambda: running(supervisor, "w.2"), "w.2 running")
        first, second = supervisor.statistics()

    assert (first.label, second.label) == ("w.1", "w.2")
    assert (first.state, first.restarts, first.last_exit, first.last_reason) == (
        ChildState.RUNNING,
        0,
        None,
        None,
    )
    assert first.pid is not None and first.pid != second.pid
    assert first.started_at is not None and first.started_at >= before
    assert first.uptime_s is not None and first.uptime_s >= 0
    after = stats(supervisor, "w.1")
    assert (after.state, after.pid, after.uptime_s, after.last_exit) == (
        ChildState.STOPPED,
        None,
        None,
        -15,
    )


async def test_the_status_file_follows_changes_and_keeps_the_final_state(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    specs = [spec("w", "sleep"), spec("once", "crash", "0", restart=RestartType.TEMPORARY)]

    async with supervising(specs, status_path=path, status_interval_s=5.0) as _:

        def file_shows_once_exited() -> bool:
            children = {c.label: c for c in read_status(path).children}
            return children["once.1"].state is ChildState.EXITED

        await wait_until(file_shows_once_exited, "the status file to show once.1 exited")
        live = read_status(path)

    assert live.state is SupervisorState.RUNNING
    assert live.children[0].to_json()["state"] == "running"
    final = read_status(path)
    assert final.state is SupervisorState.STOPPED
    assert [(c.label, c.state) for c in final.children] == [
        ("w.1", ChildState.STOPPED),
        ("once.1", ChildState.EXITED),
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temporary files left


def test_reading_something_that_is_not_a_status_file_raises_value_error(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_text(json.dumps({"version": 99}))

    with pytest.raises(ValueError, match="status file"):
        read_status(path)


async def test_each_replica_gets_its_name_replica_heartbeat_file_and_spec_env() -> None:
    envy = spec("envy", "env", replicas=2, env={"EXTRA": "yes"})

    async with supervising([envy]) as (_, output):
        await wait_until(lambda: lines_of(output, "envy.2"), "envy.2 output")
        await wait_until(lambda: lines_of(output, "envy.1"), "envy.1 output")

    assert lines_of(output, "envy.1") == [
        "name=envy replica=1 heartbeat=envy.1.heartbeat extra=yes"
    ]
    assert lines_of(output, "envy.2")[0].startswith("name=envy replica=2 heartbeat=envy.2.")


async def test_stdout_and_stderr_lines_are_prefixed_with_the_child_and_replica() -> None:
    specs = [spec("printer", "lines"), spec("a-much-longer-name", "sleep")]

    async with supervising(specs) as (_, output):
        await wait_until(lambda: len(lines_of(output, "printer.1")) >= 2, "two lines")

    printed = [line for line in output.getvalue().splitlines() if line.startswith("printer.1 ")]
    width = len("a-much-longer-name.1")
    assert sorted(printed[:2]) == sorted(
        [f"{'printer.1':<{width}} | to stdout", f"{'printer.1':<{width}} | to stderr"]
    )
    # The last line had no line end: it is flushed when the child ends.
    assert lines_of(output, "printer.1")[-1] == "no newline"


async def test_json_output_gives_one_object_per_line_with_the_stream() -> None:
    async with supervising([spec("printer", "lines")], output_json=True) as (_, output):

        def records() -> list[dict[str, str]]:
            return [json.loads(line) for line in output.getvalue().splitlines()]

        await wait_until(
            lambda: sum(r["child"] == "printer.1" for r in records()) >= 2, "two records"
        )

    mine = [(r["stream"], r["msg"]) for r in records() if r["child"] == "printer.1"]
    assert sorted(mine) == [
        ("stderr", "to stderr"),
        ("stdout", "no newline"),
        ("stdout", "to stdout"),
    ]
    keys = {"ts", "level", "logger", "msg", "actor", "pid", "child", "stream"}
    assert all(set(r) == keys for r in records())
    assert {r["stream"] for r in records() if r["child"] == "supervisor"} == {"event"}


async def test_serve_returns_at_once_when_stopped_before_it_started() -> None:
    supervisor = Supervisor([spec("w", "sleep")], intensity=RestartIntensity(0, 1))
    supervisor.request_stop()

    with trio.fail_after(WAIT_S):
        await supervisor.serve()

    assert stats(supervisor, "w.1").state is ChildState.STOPPED
    assert stats(supervisor, "w.1").started_at is None
    with pytest.raises(RuntimeError):
        await supervisor.serve()
