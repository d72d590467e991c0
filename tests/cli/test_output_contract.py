"""Every command keeps the output contract of docs/reference/cli.md, with data to show.

In a pipe (not a terminal) every stdout line is ``first key=value ...`` (``PLAIN_LINE``),
and with ``--json`` stdout is one JSON document. Each case runs a command both ways.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from stem import Stem
from stem.cli.output import PLAIN_LINE
from supervisor.status import (
    ChildState,
    ChildStatistics,
    SupervisorState,
    SupervisorStatus,
    write_status,
)
from tests.cli.conftest import Invoke, complete, fail


@dataclass(frozen=True)
class Data:
    """What the commands look at: job ids by fate, and where the files are."""

    succeeded: str
    failed: str
    buried: tuple[str, str]
    data_dir: Path
    toml: Path


@pytest.fixture
def data(stem: Invoke, app: Stem, tmp_path: Path) -> Data:
    """Jobs in every state, a worker's heartbeat, a schedule entry and the files."""
    ids = [stem("enqueue", "t", "--args", f"[{i}]").stdout.strip() for i in range(5)]
    complete(app.broker, {"answer": 42})
    for _ in range(3):
        fail(app.broker, message="disk full: no space left on device")
    stem("enqueue", "t", "--delay", "3600")
    record = {"id": "h1/1", "host": "h1", "pid": 1, "queues": ["default"], "concurrency": 4}
    run = [2, 1] + [0] * 13  # per bucket: `observe metrics` shows task rows
    by_task = [{"queue": "default", "task": "t", "processed": 3, "run": run, "wait": run}]
    counts = {"processed": 3, "failed": 1, "started_at": 1.0, "by_task": by_task}
    app.broker.heartbeat("h1/1", {**record, **counts}, 60)
    stem("schedule", "add", "nightly", "t.report", "--cron", "30 2 * * *", "--tz", "Europe/Berlin")
    child = ChildStatistics("worker", 1, 4243, ChildState.RUNNING, 2, time.time(), 4.2, -9, "hung")
    status = SupervisorStatus(4242, SupervisorState.RUNNING, time.time(), (child,))
    write_status(tmp_path / "supervise.json", status)
    toml = tmp_path / "stem.toml"
    toml.write_text('[[schedule]]\nname = "a"\ntask = "t.a"\nevery_s = 60\n')
    return Data(ids[0], ids[1], (ids[2], ids[3]), tmp_path, toml)


#: (plain argv, --json argv): the --json one runs second, on what the first left.
CASES: dict[str, tuple[list[str], list[str]]] = {
    "enqueue": (["enqueue", "t"], ["enqueue", "t", "--json"]),
    "enqueue --wait": (
        ["enqueue", "t", "--job-id", "{succeeded}", "--wait"],
        ["enqueue", "t", "--job-id", "{succeeded}", "--wait", "--json"],
    ),
    "result get": (["result", "get", "{succeeded}"], ["result", "get", "{succeeded}", "--json"]),
    "result get (failed)": (["result", "get", "{failed}"], ["result", "get", "{failed}", "--json"]),
    "result wait": (
        ["result", "wait", "{succeeded}"],
        ["result", "wait", "{succeeded}", "--json"],
    ),
    "observe queues": (["observe", "queues"], ["observe", "queues", "--json"]),
    "queue list": (["queue", "list"], ["queue", "list", "--json"]),
    "worker list": (["worker", "list"], ["worker", "list", "--json"]),
    "queue pause": (["queue", "pause", "default"], ["queue", "pause", "other", "--json"]),
    "queue resume": (["queue", "resume", "default"], ["queue", "resume", "other", "--json"]),
    "queue drain": (["queue", "drain", "idle"], ["queue", "drain", "idle", "--json"]),
    "observe workers": (["observe", "workers"], ["observe", "workers", "--json"]),
    "observe metrics": (
        ["observe", "metrics", "--interval", "0.01"],
        ["observe", "metrics", "--interval", "0.01", "--json"],
    ),
    "observe supervisor": (
        ["observe", "supervisor", "--data-dir", "{data_dir}"],
        ["observe", "supervisor", "--data-dir", "{data_dir}", "--json"],
    ),
    "dlq list": (["dlq", "list"], ["dlq", "list", "--json"]),
    "dlq show": (["dlq", "show", "{buried0}"], ["dlq", "show", "{buried0}", "--json"]),
    "dlq replay": (["dlq", "replay", "{buried0}"], ["dlq", "replay", "{buried1}", "--json"]),
    "dlq purge": (["dlq", "purge", "--yes"], ["dlq", "purge", "--yes", "--json"]),
    "schedule list": (["schedule", "list"], ["schedule", "list", "--json"]),
    "schedule show": (["schedule", "show", "nightly"], ["schedule", "show", "nightly", "--json"]),
    "schedule add": (
        ["schedule", "add", "b", "t.b", "--every", "60"],
        ["schedule", "add", "c", "t.c", "--every", "60", "--json"],
    ),
    "schedule disable": (
        ["schedule", "disable", "nightly"],
        ["schedule", "disable", "nightly", "--json"],
    ),
    "schedule enable": (
        ["schedule", "enable", "nightly"],
        ["schedule", "enable", "nightly", "--json"],
    ),
    "schedule run": (["schedule", "run", "nightly"], ["schedule", "run", "nightly", "--json"]),
    "schedule remove": (
        ["schedule", "remove", "nightly"],
        ["schedule", "add", "x", "t.x", "--every", "1", "--json"],
    ),
    "schedule check": (["schedule", "check", "{toml}"], ["schedule", "check", "{toml}", "--json"]),
}


#: They print the job's result itself, as JSON (documented): `X=$(stem result wait ...)`.
PRINT_A_VALUE = {"enqueue --wait", "result wait"}


def _fill(argv: list[str], data: Data) -> list[str]:
    names = {
        "succeeded": data.succeeded,
        "failed": data.failed,
        "buried0": data.buried[0],
        "buried1": data.buried[1],
        "data_dir": str(data.data_dir),
        "toml": str(data.toml),
    }
    return [arg.format(**names) for arg in argv]


@pytest.mark.parametrize("case", sorted(CASES))
def test_in_a_pipe_every_stdout_line_is_first_then_key_value_and_json_parses(
    stem: Invoke, data: Data, case: str
) -> None:
    plain_argv, json_argv = (_fill(argv, data) for argv in CASES[case])

    plain = stem(*plain_argv)
    as_json = stem(*json_argv)

    assert plain.exit_code in (0, 1), plain.stderr  # 1: the failed job's own record
    lines = plain.stdout.splitlines()
    assert lines, plain.stderr
    if case in PRINT_A_VALUE:
        json.loads(plain.stdout)
    else:
        assert [line for line in lines if not PLAIN_LINE.match(line)] == []
    assert as_json.exit_code in (0, 1), as_json.stderr
    json.loads(as_json.stdout)


def test_a_long_error_in_a_pipe_is_whole_and_cut_at_a_word_on_a_terminal(
    stem: Invoke, app: Stem, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stem.cli import output

    message = "the disk is full " * 10
    stem("enqueue", "t")
    fail(app.broker, message=message)
    piped = stem("dlq", "list").stdout
    monkeypatch.setattr(output, "stdout_is_tty", lambda: True)
    table_row = stem("dlq", "list").stdout.splitlines()[1]

    assert f'error="ValueError: {message.strip()}"' in piped
    error_cell = table_row.split("  ")[-1]
    assert error_cell.endswith(" the disk is...") and len(error_cell) <= 80


def test_the_cli_reference_shows_the_pattern_the_code_checks(repo_root: Path) -> None:
    reference = (repo_root / "docs" / "reference" / "cli.md").read_text()
    assert f"```\n{PLAIN_LINE.pattern}\n```" in reference
