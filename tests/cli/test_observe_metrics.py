"""``stem observe metrics``: rates and wait/run percentiles per queue and per task from
heartbeats, a live view that redraws at the rate it says, and jobs counted, not attempts."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import trio

from stem import Stem
from stem.cli import observe
from stem.cli.metrics_view import ENTER_SCREEN, LEAVE_SCREEN, duration, frame
from stem.cli.output import PLAIN_LINE
from stem.observe.live import (
    Histogram,
    Window,
    percentile_from_buckets,
    refresh_every,
    task_histograms,
)
from stem.observe.metrics import BUCKETS_S
from stem.worker import Worker, WorkerOptions, serve_worker
from tests.apps import observed
from tests.cli.conftest import Invoke

BOUNDS = [0.01, 0.1, 1.0]


class FakeClock:
    """A monotonic clock that moves only when told to (sleep, or a slow step)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_percentile_is_interpolated_inside_its_bucket_like_histogram_quantile() -> None:
    # 10 observations under 10 ms, 10 between 10 and 100 ms.
    assert percentile_from_buckets(BOUNDS, [10, 10, 0, 0], 0.5) == 0.01
    assert percentile_from_buckets(BOUNDS, [10, 10, 0, 0], 0.75) == pytest.approx(0.055)
    assert percentile_from_buckets(BOUNDS, [0, 0, 4, 0], 0.5) == pytest.approx(0.55)


def test_a_percentile_past_the_last_bound_answers_the_last_bound_and_none_without_data() -> None:
    assert percentile_from_buckets(BOUNDS, [0, 0, 1, 99], 0.99) == 1.0
    assert percentile_from_buckets(BOUNDS, [0, 0, 0, 0], 0.5) is None
    assert percentile_from_buckets(BOUNDS, [5, 5, 5], 1.0) == 1.0  # no overflow bucket given
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile_from_buckets(BOUNDS, [1, 0, 0, 0], 99)


def buckets(**at: int) -> list[int]:
    """Heartbeat bucket counts: ``buckets(b0=16, b4=4)`` puts 16 in the first bucket
    (up to 5 ms) and 4 in the fifth (50-100 ms); see ``BUCKETS_S``."""
    counts = [0] * (len(BUCKETS_S) + 1)
    for name, n in at.items():
        counts[int(name[1:])] = n
    return counts


def _record(
    ts_ms: int,
    processed: int,
    failed: int = 0,
    retried: int = 0,
    run: list[int] | None = None,
    wait: list[int] | None = None,
    worker: str = "h1/1",
    started_at: float = 1.0,
) -> dict[str, Any]:
    """A worker's heartbeat record as the worker writes it (one task, jobs.add)."""
    counts = {"processed": processed, "failed": failed, "retried": retried}
    task = {"queue": "default", "task": "jobs.add", **counts}
    task |= {"run": run or buckets(), "wait": wait or buckets(), "run_sum_s": 0.0}
    return {
        "id": worker,
        "ts_ms": ts_ms,
        "started_at": started_at,
        "queues": ["default"],
        "by_queue": {"default": counts},
        "by_task": [task],
    }


def test_rates_and_percentiles_are_differences_over_each_workers_heartbeat_window() -> None:
    window = Window(span_s=10)
    window.add(0.0, [_record(1000, 100, 1, 5, run=buckets(b0=50), wait=buckets(b0=50))])
    # 2 s later: 20 more jobs, 4 of them ran 50-100 ms; 2 more dead-lettered.
    window.add(2.0, [_record(3000, 120, 3, 5, run=buckets(b0=66, b4=4), wait=buckets(b0=70))])

    stats = window.stats()

    queue, task = stats.queues["default"].doc(), stats.tasks[("default", "jobs.add")].doc()
    assert (queue["processed_per_s"], queue["failed_per_s"], queue["retried_per_s"]) == (
        10.0,
        1.0,
        0.0,
    )
    assert task["processed_per_s"] == 10.0
    # Only the window's 20 runs count: 16 fast, 4 slow; the first 50 are history.
    assert task["run_p50_s"] == pytest.approx(0.005 * 10 / 16, abs=1e-6)
    assert task["run_p99_s"] == pytest.approx(0.05 + 0.05 * (19.8 - 16) / 4, abs=1e-6)
    assert task["wait_p99_s"] == pytest.approx(0.005 * 19.8 / 20, abs=1e-6)
    assert queue["run_p99_s"] == task["run_p99_s"]
    assert stats.workers == {"h1/1": {"processed_per_s": 10.0, "failed_per_s": 1.0}}


def test_a_worker_that_restarted_under_the_same_name_counts_from_zero() -> None:
    window = Window(span_s=10)
    window.add(0.0, [_record(1000, 500, run=buckets(b0=500))])
    window.add(2.0, [_record(3000, 8, run=buckets(b1=8), started_at=2.5)])

    task = window.stats().tasks[("default", "jobs.add")].doc()

    assert task["processed_per_s"] == 4.0
    assert task["run_p50_s"] == pytest.approx(0.0075)


def test_heartbeat_records_and_entries_of_another_form_are_left_out() -> None:
    record = _record(1000, 1)
    record["by_task"] += [
        {"queue": "default", "task": "short", "run": [1, 2, 3]},
        {"queue": 7, "task": "bad"},
        "junk",
    ]
    window = Window(span_s=10)
    window.add(0.0, [record, {"ts_ms": 5}, {"id": 3, "ts_ms": 5}])
    assert list(window.reads[0][1]) == ["h1/1"]  # records without a string id are left out
    got = task_histograms(record)
    assert sorted(got) == [("default", "jobs.add"), ("default", "short")]
    assert got[("default", "short")]["run"] is None


def test_a_worker_seen_once_has_no_rate_and_old_reads_leave_the_window() -> None:
    window = Window(span_s=5)
    window.add(0.0, [_record(1000, 0)])
    assert window.stats().queues == {}
    window.add(2.0, [_record(3000, 10)])
    window.add(4.0, [_record(5000, 20)])
    window.add(6.0, [_record(7000, 60)])
    window.add(8.0, [_record(9000, 60)])
    # Reads older than 5 s are gone: the rate is over the last 6 s of heartbeats.
    assert [at for at, _ in window.reads] == [2.0, 4.0, 6.0, 8.0]
    assert window.stats().queues["default"].doc()["processed_per_s"] == round(50 / 6, 3)


def test_a_histogram_difference_after_a_reset_is_the_new_counts() -> None:
    before, after = Histogram((1.0,), (5, 1)), Histogram((1.0,), (2, 0))
    assert after.minus(before) == after
    assert Histogram((1.0,), (7, 1)).minus(before) == Histogram((1.0,), (2, 0))


def test_refreshes_run_on_a_fixed_grid_however_long_each_takes() -> None:
    clock = FakeClock()
    started: list[float] = []

    def slow_step() -> None:
        started.append(clock.now)
        clock.now += 0.3  # reading Redis and drawing take 0.3 s

    refresh_every(1.0, slow_step, clock=clock, sleep=clock.sleep, frames=4)

    assert started == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert clock.sleeps == pytest.approx([0.7, 0.7, 0.7])


def test_a_refresh_that_overruns_is_followed_at_once_without_a_burst() -> None:
    clock = FakeClock()
    started: list[float] = []
    costs = iter([2.5, 0.1, 0.1])

    def step() -> None:
        started.append(clock.now)
        clock.now += next(costs)

    refresh_every(1.0, step, clock=clock, sleep=clock.sleep, frames=3)

    assert started == pytest.approx([0.0, 2.5, 3.5])


def test_the_live_view_redraws_every_interval_on_the_alternate_screen(
    stem: Invoke, app: Stem, tty: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(observe, "CLOCK", clock)
    monkeypatch.setattr(observe, "SLEEP", clock.sleep)
    monkeypatch.setattr(observe, "LIVE_FRAMES", 3)
    stem("enqueue", "t")
    app.broker.heartbeat("h1/1", _record(1000, 0), ttl_s=60)

    result = stem("observe", "metrics", "--interval", "0.5")

    assert result.exit_code == 0, result.stderr
    assert clock.sleeps == [0.5, 0.5]
    out = result.stdout
    assert out.startswith(ENTER_SCREEN) and out.endswith(LEAVE_SCREEN)
    assert out.count("refreshes every 0.5s, rates over the last 10s") == 3
    assert "QUEUE    TASK" in out


def test_the_help_says_the_refresh_rate_the_view_uses(stem: Invoke) -> None:
    help_text = stem("observe", "metrics", "--help").stdout
    [interval] = [p for p in observe.metrics.params if p.name == "interval_s"]
    assert "refreshes every second" in help_text
    assert interval.default == 1.0


def test_a_frame_fits_the_terminal_and_says_what_it_left_out() -> None:
    text = "\n".join(f"row {i} " + "x" * 100 for i in range(50))
    lines = frame(text, 1.0, 10.0, height=10, width=40).split("\n")
    assert lines[0].startswith("\x1b[Hstem observe metrics")
    assert len(lines) == 10  # 9 lines, the last cleared to the end of the screen
    assert lines[8].startswith("... 44 more lines")
    assert [len(line.removesuffix("\x1b[K")) for line in lines[2:8]] == [40] * 6


def test_percentiles_read_as_durations() -> None:
    assert [duration(v) for v in (None, 0.0004, 0.0042, 0.042, 1.5)] == [
        "-", "400us", "4.2ms", "42ms", "1.50s",
    ]  # fmt: skip


def test_in_a_pipe_each_queue_task_and_worker_is_one_line(
    stem: Invoke, app: Stem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(observe, "HEARTBEAT_WAIT_S", 0.5)
    stem("enqueue", "t")
    app.broker.heartbeat("h1/1", _record(1000, 0), ttl_s=60)
    # The next read sees a later heartbeat (Redis stamps its time): 20 jobs, 4 slow.
    later = _record(3000, 20, run=buckets(b0=16, b4=4), wait=buckets(b1=10, b2=10))
    monkeypatch.setattr(observe, "SLEEP", lambda s: app.broker.heartbeat("h1/1", later, 60))

    result = stem("observe", "metrics", "--interval", "0.01")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if not PLAIN_LINE.match(line)] == []
    [queue] = [line for line in lines if line.startswith("queue:")]
    [task] = [line for line in lines if line.startswith("task:")]
    assert queue.startswith(
        "queue:default ready=1 delayed=0 pending=0 dead=0 paused=no throttled=0 limiter=- workers=1"
    )
    assert re.search(r" processed_per_s=[1-9][0-9.]* failed_per_s=0.000 ", queue)
    assert re.match(r"task:jobs.add queue=default processed_per_s=[1-9][0-9.]* ", task)
    assert "wait_p50_s=0.010 " in task and "run_p50_s=0.003 " in task


def test_json_has_a_row_per_queue_and_per_task(
    stem: Invoke, app: Stem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(observe, "HEARTBEAT_WAIT_S", 0.1)
    app.broker.heartbeat("h1/1", _record(1000, 0), ttl_s=60)
    doc = json.loads(stem("observe", "metrics", "--once", "--json").stdout)
    # One heartbeat: the task has a row, and no figures until the next one.
    assert doc["tasks"] == [
        {
            "task": "jobs.add", "queue": "default", "processed_per_s": None,
            "failed_per_s": None, "retried_per_s": None, "wait_p50_s": None,
            "wait_p99_s": None, "run_p50_s": None, "run_p99_s": None,
        }
    ]  # fmt: skip


async def test_failures_count_jobs_not_attempts(redis_url: str, namespace: str) -> None:
    observed.app.connect(redis_url, namespace=namespace)
    admin = observed.app.broker
    window = Window(span_s=float("inf"))
    try:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                worker: Worker = await nursery.start(
                    serve_worker, observed.app, WorkerOptions(concurrency=4, name="w1")
                )
                while not admin.workers():
                    await trio.sleep(0.05)  # polling for the first heartbeat
                window.add(0.0, admin.workers())
                # Each job fails twice (one retry) before it is dead-lettered.
                observed.app.enqueue_many(observed.fails, [() for _ in range(5)])
                while (admin.workers()[0].get("by_queue") or {}).get("default", {}).get(
                    "failed"
                ) != 5:
                    await trio.sleep(0.05)  # polling the condition, not timing it
                window.add(1.0, admin.workers())
                worker.request_stop()
    finally:
        observed.app.close()

    [first], [last] = (list(read.values()) for _, read in window.reads)
    window_s = (last["ts_ms"] - first["ts_ms"]) / 1000
    queue = window.stats().queues["default"].doc()
    assert round(queue["failed_per_s"] * window_s) == 5
    assert round(queue["retried_per_s"] * window_s) == 5


def test_the_snapshot_counts_the_other_actors_by_kind(
    stem: Invoke, app: Stem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(observe, "HEARTBEAT_WAIT_S", 0.1)
    app.broker.actor_heartbeat("reclaimer", "h1/r", {}, ttl_s=60)
    app.broker.actor_heartbeat("beat", "h1/b", {}, ttl_s=60)
    app.broker.actor_heartbeat("beat", "h2/b", {}, ttl_s=60)

    doc = json.loads(stem("observe", "metrics", "--once", "--json").stdout)
    [totals, *_] = stem("observe", "metrics", "--once").stdout.splitlines()

    assert doc["actors"] == {"reclaimer": 1, "beat": 2, "ratelimiter": 0}
    assert totals.endswith(" reclaimer=1 beat=2 ratelimiter=0")
