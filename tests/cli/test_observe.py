"""``stem observe queues|workers|metrics``: plain lines in a pipe, tables on a TTY, JSON."""

from __future__ import annotations

import json
import time

import pytest

from stem import Stem
from stem.cli import observe, output
from stem.cli.observe import Sample, next_sample, rates, sample
from tests.cli.conftest import Invoke, fail, take


def _fill(stem: Invoke, app: Stem) -> None:
    """default: 1 ready, 1 pending, 1 dead; later: 1 delayed."""
    for _ in range(3):
        stem("enqueue", "t")
    stem("enqueue", "t", "--queue", "later", "--delay", "3600")
    take(app.broker)
    fail(app.broker)


def test_queues_prints_one_plain_line_per_queue(stem: Invoke, app: Stem) -> None:
    _fill(stem, app)
    result = stem("observe", "queues")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "default ready=1 delayed=0 pending=1 dead=1 paused=no throttled=0 limiter=-",
        "later ready=0 delayed=1 pending=0 dead=0 paused=no throttled=0 limiter=-",
    ]


def test_queues_json_is_an_array_of_depths(stem: Invoke, app: Stem) -> None:
    _fill(stem, app)
    result = stem("observe", "queues", "--json")
    assert json.loads(result.stdout) == [
        {"queue": "default", "ready": 1, "delayed": 0, "pending": 1, "dead": 1, "paused": False}
        | {"throttled": 0, "limiter": None},
        {"queue": "later", "ready": 0, "delayed": 1, "pending": 0, "dead": 0, "paused": False}
        | {"throttled": 0, "limiter": None},
    ]


@pytest.mark.usefixtures("tty")
def test_queues_is_a_table_on_a_terminal(stem: Invoke, app: Stem) -> None:
    _fill(stem, app)
    result = stem("observe", "queues")
    assert result.stdout.splitlines() == [
        "QUEUE    READY  DELAYED  PENDING  DEAD  PAUSED  THROTTLED  LIMITER",
        "default  1      0        1        1     no      0          -",
        "later    0      1        0        0     no      0          -",
    ]


def test_no_queues_says_so_on_stderr_in_a_pipe(stem: Invoke) -> None:
    result = stem("observe", "queues")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "no queues yet\n")


def _heartbeat(app: Stem, worker_id: str, processed: int, failed: int = 0) -> None:
    record = {
        "id": worker_id,
        "host": "h1",
        "pid": 123,
        "queues": ["default", "high"],
        "concurrency": 4,
        "in_flight": 2,
        "running": 1,
        "processed": processed,
        "failed": failed,
        "started_at": 1.0,
    }
    app.broker.heartbeat(worker_id, record, ttl_s=60)


def test_workers_lists_heartbeats_with_their_age(stem: Invoke, app: Stem) -> None:
    _heartbeat(app, "h1/1", 5, 1)
    result = stem("observe", "workers")
    assert result.exit_code == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith("h1/1 host=h1 pid=123 queues=default,high concurrency=4 in_flight=2")
    assert "processed=5 failed=1" in line
    assert " up=" in line and " seen=" in line


def test_workers_json_carries_the_heartbeat_record(stem: Invoke, app: Stem) -> None:
    _heartbeat(app, "h1/1", 5)
    [doc] = json.loads(stem("observe", "workers", "--json").stdout)
    assert (doc["id"], doc["processed"], doc["queues"]) == ("h1/1", 5, ["default", "high"])
    assert 0 <= doc["heartbeat_age_ms"] < 60_000
    assert doc["uptime_ms"] > 0


@pytest.mark.usefixtures("tty")
def test_workers_is_a_table_on_a_terminal(stem: Invoke, app: Stem) -> None:
    _heartbeat(app, "h1/1", 5)
    header, row = stem("observe", "workers").stdout.splitlines()
    assert header.split() == [
        "WORKER", "HOST", "PID", "QUEUES", "CONC", "HELD", "RUNNING", "PROCESSED", "FAILED",
        "UP", "SEEN",
    ]  # fmt: skip
    assert row.split()[:9] == ["h1/1", "h1", "123", "default,high", "4", "2", "1", "5", "0"]


def test_metrics_once_json_is_one_snapshot(
    stem: Invoke, app: Stem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(observe, "HEARTBEAT_WAIT_S", 0.1)  # no worker beats in this test
    _fill(stem, app)
    _heartbeat(app, "h1/1", 5)
    result = stem("observe", "metrics", "--once", "--json", "--interval", "0.05")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["totals"] == {
        "ready": 1, "delayed": 1, "pending": 1, "dead": 1, "workers": 1, "in_flight": 2,
    }  # fmt: skip
    assert [q["queue"] for q in doc["queues"]] == ["default", "later"]
    assert [w["id"] for w in doc["workers"]] == ["h1/1"]
    # One heartbeat only: no window to measure a rate over.
    assert (doc["rates"]["processed_per_s"], doc["rates"]["workers"]) == (0, {})


def test_metrics_without_a_terminal_prints_one_snapshot_as_plain_lines(
    stem: Invoke, app: Stem
) -> None:
    _fill(stem, app)
    result = stem("observe", "metrics", "--interval", "0.05")
    assert result.exit_code == 0, result.stderr
    totals, *queues = result.stdout.splitlines()
    assert totals.startswith(
        "totals ready=1 delayed=1 pending=1 dead=1 workers=0 in_flight=0 "
        "processed_per_s=0.000 failed_per_s=0.000 interval_s="
    )
    assert (
        "queue:default ready=1 delayed=0 pending=1 dead=1 paused=no throttled=0 limiter=- "
        "workers=0 processed_per_s=- failed_per_s=- retried_per_s=- wait_p50_s=- "
        "wait_p99_s=- run_p50_s=- run_p99_s=-"
    ) in queues


def test_metrics_once_on_a_terminal_prints_a_summary_and_tables(
    stem: Invoke, app: Stem, tty: None
) -> None:
    _fill(stem, app)
    result = stem("observe", "metrics", "--once", "--interval", "0.05")
    assert result.exit_code == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("jobs: 0.0/s processed, 0.0/s failed")
    assert "ready 1, delayed 1, pending 1, dead 1 | workers 0" in first
    header, first_queue = result.stdout.splitlines()[2:4]
    assert header.split()[:4] == ["QUEUE", "TASK", "RATE", "FAILED"]
    assert first_queue.split()[:2] == ["default", "(all)"]
    assert first_queue.split()[-4:] == ["1", "1", "1", "0"]  # ready, DLQ, in flight, workers


def test_rates_are_counter_differences_over_each_workers_heartbeat_window() -> None:
    before = Sample(10.0, {"a": (1000, 100, 1), "b": (1500, 50, 0), "c": (1000, 7, 0)})
    after = Sample(
        11.0, {"a": (3000, 120, 3), "b": (2500, 4, 0), "c": (1000, 7, 0), "d": (9, 9, 9)}
    )
    got = rates(before, after)
    # b restarted under the same name: its counter starts again from zero. c has not
    # written a newer heartbeat and d was not there before: no rate for them.
    assert got["workers"] == {
        "a": {"processed_per_s": 10.0, "failed_per_s": 1.0},
        "b": {"processed_per_s": 4.0, "failed_per_s": 0.0},
    }
    assert (got["interval_s"], got["processed_per_s"], got["failed_per_s"]) == (1.0, 14.0, 1.0)


def test_a_sample_is_stale_until_every_worker_in_both_wrote_a_newer_heartbeat() -> None:
    before = Sample(0.0, {"a": (1000, 0, 0), "gone": (1000, 0, 0)})
    assert Sample(1.0, {"a": (1000, 0, 0)}).stale(before)
    assert not Sample(1.0, {"a": (3000, 5, 0), "new": (1, 0, 0)}).stale(before)


def test_the_next_sample_waits_for_a_newer_heartbeat_and_gives_its_rate(app: Stem) -> None:
    _heartbeat(app, "h1/1", 5)
    before = sample(app.broker.workers(), time.monotonic())
    first_ms = before.counters["h1/1"][0]
    while output.now_ms() <= first_ms:  # the next heartbeat must carry a later time
        pass
    _heartbeat(app, "h1/1", 25)
    after = next_sample(app.broker, before, 0.0)
    got = rates(before, after)["workers"]["h1/1"]
    window_s = (after.counters["h1/1"][0] - first_ms) / 1000
    assert got == {"processed_per_s": 20 / window_s, "failed_per_s": 0.0}


def test_plain_values_with_spaces_are_json_quoted() -> None:
    assert output.plain_line(["a", "b", "c"], ["x", "two words", 'q"']) == (
        'x b="two words" c="q\\""'
    )
