"""``--prefetch auto`` holds as many jobs ahead as start within the budget at the measured
pace (stem/worker/prefetch.py); a number holds that many."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import trio

from stem import JobState, Stem
from stem.config import parse_prefetch
from stem.errors import ConfigError
from stem.handle import JobHandle
from stem.worker.core import Worker, WorkerOptions
from stem.worker.prefetch import BUDGET_S, MOST_PER_SLOT, START, Prefetch
from tests.apps import jobs
from tests.security.servers import run_stem
from tests.worker.conftest import start_worker, wait_until

Procs = list[subprocess.Popen[bytes]]


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> Clock:
    return Clock()


def run_jobs(p: Prefetch, clock: Clock, n: int, each_s: float) -> None:
    """``n`` jobs of ``each_s`` seconds, one after another on slot 0."""
    for _ in range(n):
        p.start(0)
        clock.now_s += each_s
        p.finish(0)


def test_a_number_is_held_whatever_the_pace(clock: Clock) -> None:
    p = Prefetch(4, 7, clock)
    assert p.value() == 7
    run_jobs(p, clock, 20, 30.0)
    assert p.value() == 7
    assert p.capacity() == 11


def test_auto_holds_none_ahead_until_a_job_has_finished(clock: Clock) -> None:
    p = Prefetch(10, "auto", clock)
    assert p.value() == START == 0
    p.start(0)
    clock.now_s += 0.001
    assert p.value() == 0  # one slot busy, nothing finished: no pace yet
    p.finish(0)
    assert p.value() == MOST_PER_SLOT * 10  # a 1 ms job: 10 slots start 500 in 50 ms


def test_auto_holds_the_most_for_jobs_far_shorter_than_the_budget(clock: Clock) -> None:
    p = Prefetch(10, "auto", clock)
    run_jobs(p, clock, 5, 0.00005)
    assert p.value() == MOST_PER_SLOT * 10
    assert p.capacity() == 10 + MOST_PER_SLOT * 10


def test_auto_holds_what_starts_within_the_budget_for_jobs_in_between(clock: Clock) -> None:
    p = Prefetch(10, "auto", clock)
    run_jobs(p, clock, 50, 0.025)  # 10 slots of 25 ms jobs start 400 a second
    assert p.value() == round(10 * BUDGET_S / 0.025) == 20


def test_auto_holds_none_ahead_of_long_jobs(clock: Clock) -> None:
    p = Prefetch(10, "auto", clock)
    run_jobs(p, clock, 3, 60.0)
    assert p.value() == 0
    assert p.capacity() == 10


def test_auto_follows_a_change_of_pace_through_its_moving_average(clock: Clock) -> None:
    p = Prefetch(10, "auto", clock)
    run_jobs(p, clock, 50, 0.00005)
    assert p.value() == 100
    run_jobs(p, clock, 1, 10.0)  # one long job pulls the average far above the budget
    assert p.value() == 0
    run_jobs(p, clock, 200, 0.00005)  # and a long run of short ones brings it back
    assert p.value() == 100


def test_auto_stops_prefetching_while_every_slot_runs_a_job_older_than_the_pace(
    clock: Clock,
) -> None:
    p = Prefetch(2, "auto", clock)
    run_jobs(p, clock, 20, 0.00005)
    assert p.value() == 20
    p.start(0)
    p.start(1)
    clock.now_s += 0.2  # both slots busy for 200 ms: jobs have become long
    assert p.value() == 0
    p.finish(1)  # a free slot: the average decides again, with one 200 ms job in it
    assert p.mean_s == pytest.approx(0.020045)
    assert p.value() == 4  # 2 slots * 50 ms / 20 ms


def test_a_run_left_uncounted_does_not_move_the_average(clock: Clock) -> None:
    p = Prefetch(10, "auto", clock)
    run_jobs(p, clock, 5, 0.2)
    p.start(3)
    clock.now_s += 0.0001  # a revoked job, cancelled at once
    p.finish(3, counted=False)
    assert p.mean_s == pytest.approx(0.2)
    assert p.value() == 2


@pytest.mark.parametrize("text", ["auto", "0", "25", 25])
def test_a_prefetch_setting_is_auto_or_a_count(text: str | int) -> None:
    assert parse_prefetch(text) == ("auto" if text == "auto" else int(text))


@pytest.mark.parametrize("text", ["-1", "lots", "2.5", "", 2.5, -1, True])
def test_a_bad_prefetch_setting_is_a_config_error_naming_it(text: Any) -> None:
    with pytest.raises(ConfigError, match=r"prefetch must be 'auto' or a number >= 0, got"):
        parse_prefetch(text)


async def test_an_auto_worker_holds_more_ahead_once_its_jobs_prove_short_and_stays_bounded(
    japp: Stem, monkeypatch: pytest.MonkeyPatch
) -> None:
    handles = jobs.noop.enqueue_many([() for _ in range(300)])
    worker = Worker(japp, WorkerOptions(concurrency=2, burst=True, name="auto-short"))
    stream = japp.broker.keys.queue("default").stream(0)
    held: list[int] = []  # what Redis counts as held by the worker, after each fetch
    real_add = worker.held.add

    def add(got: Any) -> None:
        real_add(got)
        held.append(japp.broker.client.xpending(stream, "workers")["pending"])

    monkeypatch.setattr(worker.held, "add", add)
    with trio.fail_after(60):
        await worker.serve()
    assert all(h.status() is JobState.SUCCEEDED for h in handles)
    assert held[0] <= 2  # nothing finished yet: no job held ahead
    assert 2 < max(held) <= 2 + MOST_PER_SLOT * 2


async def until(condition: Any, timeout_s: float = 30) -> None:
    """Poll ``condition`` (the worker runs in the same trio run) until true, or fail."""
    with trio.fail_after(timeout_s):
        while not condition():
            await trio.sleep(0.01)


async def run_short_jobs(worker: Worker) -> None:
    """50 no-op jobs through ``worker``: its measured pace is then short (prefetch 20)."""
    short = await trio.to_thread.run_sync(lambda: jobs.noop.enqueue_many([()] * 50))
    await until(lambda: all(h.status() is JobState.SUCCEEDED for h in short))
    assert worker.prefetch.value() == 10 * worker.options.concurrency


def enqueue_long_then_short(app: Stem) -> list[JobHandle]:
    """Two 3 s jobs (priority 9) and 20 no-op ones, enqueued while the queue is paused,
    so that one fetch takes them all once resumed: the long ones first, the short ones
    held ahead at the pace measured before."""
    app.broker.pause("default")
    first = jobs.arecord.enqueue_with(priority=9)
    handles: list[JobHandle] = [first("/dev/null", str(i), 3.0) for i in range(2)]
    handles += jobs.noop.enqueue_many([()] * 20)
    app.broker.resume("default")
    return handles


async def test_a_worker_whose_slots_fill_with_long_jobs_while_it_waits_takes_none_ahead(
    japp: Stem,
) -> None:
    # The wait for new jobs blocks up to a second with a fetch sent along; the prefetch
    # counted before it (20 here) must not be what that fetch takes once both slots run
    # long jobs (found in review: it took 20 short jobs and parked them behind the two).
    worker = Worker(japp, WorkerOptions(concurrency=2, name="fills-up"))
    stream = japp.broker.keys.queue("default").stream(0)

    def held_in_redis() -> int:
        return int(japp.broker.client.xpending(stream, "workers")["pending"])

    async with trio.open_nursery() as nursery:
        await nursery.start(worker.serve)
        await run_short_jobs(worker)
        long = await trio.to_thread.run_sync(
            lambda: jobs.arecord.enqueue_many([("/dev/null", str(i), 3.0) for i in range(2)])
        )
        await until(lambda: worker._running == 2 and worker.prefetch.capacity() == 2)
        more = await trio.to_thread.run_sync(lambda: jobs.noop.enqueue_many([()] * 30))
        while long[0].status() is not JobState.SUCCEEDED:
            assert await trio.to_thread.run_sync(held_in_redis) <= 2
            await trio.sleep(0.01)
        await until(lambda: all(h.status() is JobState.SUCCEEDED for h in more))
        worker.request_stop()


async def test_jobs_held_ahead_of_slots_that_turned_long_go_back_to_the_queue(
    japp: Stem,
) -> None:
    # The jobs fetched just before a queue turns to long jobs: the pace said short, so
    # the worker took 20 ahead; its slots then run 3 s jobs. After SHED_AFTER_S it hands
    # those 20 back for other workers instead of keeping them until a slot frees.
    worker = Worker(japp, WorkerOptions(concurrency=2, name="sheds"))
    streams = [japp.broker.keys.queue("default").stream(p) for p in (0, 9)]

    def held_in_redis() -> int:
        client = japp.broker.client
        return sum(int(client.xpending(s, "workers")["pending"]) for s in streams)

    async with trio.open_nursery() as nursery:
        await nursery.start(worker.serve)
        await run_short_jobs(worker)
        handles = await trio.to_thread.run_sync(enqueue_long_then_short, japp)
        await until(lambda: worker._running == 2)  # both slots on the long jobs
        started = trio.current_time()
        await until(lambda: held_in_redis() == 2, 10)  # the jobs held ahead handed back
        assert worker._running == 2  # the long jobs still run: the others went back
        assert trio.current_time() - started < 3.0
        await until(lambda: all(h.status() is JobState.SUCCEEDED for h in handles))
        worker.request_stop()


async def test_jobs_whose_hand_back_meets_a_redis_blip_are_handed_back_again_and_run(
    japp: Stem, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found in review: a failed hand-back only logged, so the 20 jobs stayed held (leases
    # renewed) in no runner's channel until the worker stopped, and filled its capacity.
    from stem.errors import BrokerUnavailable

    worker = Worker(japp, WorkerOptions(concurrency=2, name="sheds-blip"))
    real_release = japp.broker.release
    failed: list[int] = []

    def release_once_failing(deliveries: Any, **kwargs: Any) -> int:
        if not failed:
            failed.append(len(deliveries))
            raise BrokerUnavailable("connection reset (injected)")
        return real_release(deliveries, **kwargs)

    async with trio.open_nursery() as nursery:
        await nursery.start(worker.serve)
        await run_short_jobs(worker)
        monkeypatch.setattr(japp.broker, "release", release_once_failing)
        handles = await trio.to_thread.run_sync(enqueue_long_then_short, japp)
        await until(lambda: failed == [20] and len(worker.held) == 2, 10)  # retried
        await until(lambda: all(h.status() is JobState.SUCCEEDED for h in handles))
        worker.request_stop()


def test_an_auto_worker_holds_no_long_jobs_ahead_so_a_second_worker_gets_them(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs
) -> None:
    # With a fixed prefetch the first worker would take every job (1 running, 5 ahead)
    # and the second would start none until the first had run them all.
    broker = japp.broker
    for name in ("a", "b"):
        procs.append(start_worker(redis_url, namespace, repo_root, "--concurrency", "1", name=name))
    # Both up before the jobs exist: on a slow machine one worker could otherwise run all
    # six before the other has started, which says nothing about what either held.
    wait_until(lambda: len(broker.workers()) == 2, what="both workers' first heartbeat")
    handles = jobs.arecord.enqueue_many([("/dev/null", str(i), 0.3) for i in range(6)])
    stream = broker.keys.queue("default").stream(0)
    peak: Counter[str] = Counter()
    deadline = time.monotonic() + 60
    while not all(h.status() is JobState.SUCCEEDED for h in handles):
        for c in broker.client.xinfo_consumers(stream, "workers"):
            name = c["name"].decode().split("/")[-1]
            peak[name] = max(peak[name], int(c["pending"]))
        assert time.monotonic() < deadline, "jobs did not finish"
    assert peak == {"a": 1, "b": 1}


@pytest.mark.parametrize("value", ["lots", "-3"])
def test_a_worker_given_a_bad_prefetch_exits_with_one_line(
    redis_url: str, namespace: str, value: str
) -> None:
    done = run_stem("--redis-url", redis_url, "--namespace", namespace,
                    "--app", "tests.apps.jobs:app", "worker", "--prefetch", value)  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        f"stem: error: prefetch must be 'auto' or a number >= 0, got {value!r}"
    ]


@pytest.mark.parametrize(("given", "passed"), [("", "auto"), ("prefetch = 0\n", "0")])
def test_supervise_passes_its_prefetch_to_each_worker(
    tmp_path: Path, given: str, passed: str
) -> None:
    from stem.supervise import build_specs, options_from_file

    config = tmp_path / "stem.toml"
    config.write_text(f'[supervise]\napp_spec = "a:b"\n{given}')
    specs, _ = build_specs(options_from_file(config, {}), "redis://127.0.0.1:1/0")
    worker = next(s for s in specs if s.name == "worker")
    assert worker.argv[worker.argv.index("--prefetch") + 1] == passed


@pytest.mark.parametrize("value", ['"lots"', "2.5", "-1"])
def test_supervise_refuses_a_bad_prefetch_in_its_config(tmp_path: Path, value: str) -> None:
    # 2.5 included: it must not pass here and then fail in every worker it starts.
    from stem.supervise import options_from_file

    config = tmp_path / "stem.toml"
    config.write_text(f'[supervise]\napp_spec = "a:b"\nprefetch = {value}\n')
    with pytest.raises(ConfigError, match="prefetch must be 'auto' or a number >= 0, got "):
        options_from_file(config, {})


def test_worker_options_read_a_prefetch_given_as_text(japp: Stem) -> None:
    # As it comes from text (a form, an environment variable): read as the number.
    options = WorkerOptions(prefetch="5")  # type: ignore[arg-type]
    assert options.prefetch == 5
    assert Worker(japp, options).prefetch.capacity() == 15
