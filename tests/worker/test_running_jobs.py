"""Jobs run in every pool and settle with their results (an in-process worker)."""

from __future__ import annotations

import sys
import threading
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from stem import JobFailed, JobState, Stem
from stem.broker import Delivery
from stem.envelope import Envelope
from stem.errors import SoftTimeLimitExceeded
from stem.outcome import Verdict
from stem.task import Pool
from stem.worker import Worker, WorkerOptions, pools, serve_worker
from tests.apps import jobs
from tests.worker.conftest import APP_SPEC, wait_until


@pytest.fixture
async def worker(japp: Stem) -> AsyncIterator[Worker]:
    options = WorkerOptions(concurrency=4, prefetch=4, app_spec=APP_SPEC, stop_timeout_s=5)
    async with trio.open_nursery() as nursery:
        w = await nursery.start(
            lambda task_status: serve_worker(japp, options, task_status=task_status)
        )
        yield w
        w.request_stop()


async def result(handle: object, timeout_s: float = 30) -> object:
    return await handle.result_async(timeout_s)  # type: ignore[attr-defined]


async def test_an_async_task_returns_its_result(worker: Worker) -> None:
    assert await result(jobs.add.enqueue(2, 3)) == 5


async def test_a_sync_task_runs_in_a_pool_child_process(worker: Worker) -> None:
    assert await result(jobs.sync_add.enqueue(2, 3)) == 5
    info = await result(jobs.whoami.enqueue())
    assert info["pid"] != __import__("os").getpid()  # type: ignore[index]


async def test_a_thread_pool_task_returns_its_result(worker: Worker) -> None:
    assert await result(jobs.thread_add.enqueue(4, 5)) == 9


async def test_a_task_sees_its_job_id_and_attempt(worker: Worker) -> None:
    handle = jobs.whoami.enqueue()
    info = await result(handle)
    assert (info["id"], info["attempt"]) == (handle.id, 0)  # type: ignore[index]


async def test_a_failing_task_is_retried_until_it_succeeds(worker: Worker) -> None:
    assert await result(jobs.flaky.enqueue(2)) == 2


async def test_exhausted_retries_end_in_the_dead_letter_queue(worker: Worker, japp: Stem) -> None:
    handle = jobs.flaky.enqueue(10)
    with pytest.raises(JobFailed, match="max-retries") as caught:
        await result(handle)
    assert caught.value.error["type"] == "ValueError"
    [dead] = japp.broker.dead_entries(japp.default_queue)
    assert (dead.job_id, dead.reason) == (handle.id, "max-retries")
    assert handle.status() is JobState.FAILED


async def test_an_exception_in_dont_retry_on_is_not_retried(worker: Worker) -> None:
    handle = jobs.never_retry_keyerror.enqueue()
    with pytest.raises(JobFailed, match="not-retryable"):
        await result(handle)
    assert handle.info().attempt == 0  # type: ignore[union-attr]


async def test_a_thread_pool_task_error_is_recorded_as_raised_and_dont_retry_on_applies(
    worker: Worker,
) -> None:
    handle = jobs.thread_never_retry_keyerror.enqueue()
    with pytest.raises(JobFailed, match="not-retryable") as caught:
        await result(handle)
    assert caught.value.error["type"] == "KeyError"
    assert handle.info().attempt == 0  # type: ignore[union-attr]


async def test_a_task_can_ask_for_a_retry_with_its_own_delay(worker: Worker) -> None:
    assert await result(jobs.asks_for_retry.enqueue()) == 1


async def test_a_result_that_is_not_json_fails_the_job(worker: Worker) -> None:
    with pytest.raises(JobFailed, match="not-retryable"):
        await result(jobs.bad_result.enqueue())


async def test_a_runaway_sync_task_is_killed_at_its_hard_limit_and_the_next_job_runs(
    worker: Worker,
) -> None:
    runaway = jobs.spin.enqueue()
    with pytest.raises(JobFailed, match="hard-time-limit"):
        await result(runaway)
    assert await result(jobs.sync_add.enqueue(1, 1)) == 2


async def test_a_soft_limit_raises_inside_the_task_which_may_clean_up(worker: Worker) -> None:
    assert await result(jobs.soft_limited.enqueue()) == "cleaned up"


async def test_a_soft_limit_raises_inside_a_thread_pool_task_too(worker: Worker) -> None:
    # Raised in the thread as a bare class, so instantiated with no arguments: it once
    # failed there with a TypeError (the message was a required argument).
    answer = await result(jobs.thread_soft_limited.enqueue())
    assert answer == "cleaned up: soft time limit exceeded"


async def test_a_task_that_kills_its_pool_child_fails_and_the_pool_recovers(
    worker: Worker,
) -> None:
    with pytest.raises(JobFailed, match="ChildDied"):
        await result(jobs.crash_child.enqueue(), timeout_s=60)
    assert await result(jobs.sync_add.enqueue(2, 2)) == 4


async def test_bad_jobs_are_dead_lettered_with_reasons_and_the_worker_stays_up(
    worker: Worker, japp: Stem
) -> None:
    broker = japp.broker
    unknown = japp.enqueue("no.such.task")
    wrong_args = jobs.sync_add.enqueue(1, 2, 3)
    broker.client.xadd(broker.keys.queue("default").stream(0), {"junk": "\xff"})
    with trio.fail_after(30):
        while broker.queue_stats("default").dead < 3:
            await trio.sleep(0.02)
    reasons = {d.job_id: d.reason for d in broker.dead_entries("default")}
    assert reasons == {
        unknown.id: "unknown-task",
        wrong_args.id: "bad-arguments",
        "": "undecodable",
    }
    assert await result(jobs.add.enqueue(1, 1)) == 2


async def test_jobs_fetched_as_the_worker_stops_are_handed_back_not_lost(japp: Stem) -> None:
    # A fetch runs in a thread and cannot be cancelled: one that returns after the stop
    # closed the runners' channel must hand its jobs back, not crash the worker.
    worker = Worker(japp, WorkerOptions(concurrency=2, prefetch=0, app_spec=APP_SPEC))
    runners_gone = threading.Event()
    fetch = worker._fetch

    def fetch_after_the_stop(free: int) -> list[Delivery]:
        assert runners_gone.wait(30), "the runners never finished"
        return fetch(free)

    worker._fetch = fetch_after_the_stop  # type: ignore[method-assign]
    handle = jobs.add.enqueue(2, 3)
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.serve)
        worker.request_stop()
        with trio.fail_after(30):
            await worker._live_runners.wait_value(0)
        runners_gone.set()
        with trio.fail_after(30):
            await worker.stopped.wait()

    record = handle.info()
    assert record is not None and record.state == JobState.QUEUED
    assert record.deliveries == 0  # handed back unstarted: the delivery is not counted
    async with trio.open_nursery() as nursery:
        options = WorkerOptions(concurrency=2, app_spec=APP_SPEC, burst=True)
        nursery.start_soon(lambda: serve_worker(japp, options))
        assert await result(handle) == 5


def test_a_soft_limit_that_fires_as_a_thread_task_returns_leaves_its_result() -> None:
    # The alarm holds the lock while the function returns; the job thread then waits for
    # that lock to clear its ident, and the alarm's exception lands there: it must not
    # replace a result the task already produced (Retries would run the job again).
    lock, running = threading.Lock(), list[int]()
    go = threading.Event()
    task = SimpleNamespace(fn=lambda: go.wait(30) and "done")
    ctx = SimpleNamespace(args=(), kwargs={})
    out: dict[str, object] = {}

    def job() -> None:
        try:
            out["result"] = pools._call(task, ctx, (running, lock))  # type: ignore[arg-type]
        except BaseException as exc:  # what reached the caller is the point
            out["error"] = exc

    thread = threading.Thread(target=job)
    thread.start()
    wait_until(lambda: bool(running), what="the task to start")
    with lock:
        go.set()  # the function returns now, and its thread blocks on the lock
        wait_until(lambda: _waiting_to_clear(thread), what="the thread to wait for the lock")
        pools._raise_in_thread(running[0], SoftTimeLimitExceeded)
    thread.join(timeout=30)
    assert out == {"result": "done"}


def _waiting_to_clear(thread: threading.Thread) -> bool:
    """Whether ``thread`` has left the task's function and sits in ``_call`` itself."""
    frame = sys._current_frames().get(thread.ident or 0)
    return frame is not None and frame.f_code is pools._call.__code__


@pytest.mark.parametrize("stopping", [False, True], ids=["refused", "handed-back"])
async def test_a_runner_yields_for_each_job_that_waited_for_nothing(
    japp: Stem, stopping: bool
) -> None:
    # Jobs refused before they run (here: no record), or handed back as the worker stops,
    # wait for no thread, so the runner's next take must yield each time, or one runner
    # would go through its channel without letting the settler or the renewals run.
    worker = Worker(japp, WorkerOptions(concurrency=1, app_spec=APP_SPEC))
    if stopping:
        worker._stop.set()
    send, recv = trio.open_memory_channel[Delivery](100)
    for n in range(40):
        send.send_nowait(Delivery("default", 0, f"{n + 1}-0", None, None, 0, 1))
    send.close()
    me, steps = trio.lowlevel.current_task(), [0]

    class Steps(trio.abc.Instrument):
        def before_task_step(self, task: trio.lowlevel.Task) -> None:
            steps[0] += task is me

    counter = Steps()
    trio.lowlevel.add_instrument(counter)
    try:
        await worker._runner(recv, 0)
    finally:
        trio.lowlevel.remove_instrument(counter)
    if stopping:
        assert len(worker.settler.released) == 40  # none run, all handed back
    else:
        assert worker.executor.failed == 40  # every one refused (dead-lettered)
    assert steps[0] >= 39  # a yield before each take after the first


class Controlled:
    """An async-pool runner for ``Worker._runner`` tests: each run does what ``plan`` says
    for its job id (``block``: wait until cancelled; ``self-revoke``: have its own job
    revoked as it returns, with no checkpoint after), then passes one checkpoint (where a
    cancel meant for an earlier job would land) and returns 3."""

    hands_over = False

    def __init__(self, worker: Worker, plan: dict[str, str]) -> None:
        self.worker, self.plan = worker, plan
        self.started: list[str] = []

    async def run(self, task: object, ctx: Any, soft_s: object, hard_s: object) -> Any:
        self.started.append(ctx.job_id)
        what = self.plan.get(ctx.job_id)
        if what == "block":
            await trio.sleep_forever()
        if what == "self-revoke":
            self.worker.revocations.cancel([self.worker_delivery(ctx.job_id)])
            return 3
        await trio.lowlevel.checkpoint()
        return 3

    def worker_delivery(self, job_id: str) -> Delivery:
        return next(d for d, _ in self.worker.revocations._running.values() if d.job_id == job_id)


def add_job(job_id: str, n: int) -> Delivery:
    envelope = Envelope(job_id, jobs.add.name, [1, 2], {}, "default", 0).encode()
    return Delivery("default", 0, f"{n}-0", job_id, envelope.encode(), 0, 1)


Channel = tuple[trio.MemorySendChannel[Delivery], trio.MemoryReceiveChannel[Delivery]]


def one_runner(japp: Stem, plan: dict[str, str]) -> tuple[Worker, Controlled, Channel]:
    """A worker (not started) whose async jobs run on ``Controlled(plan)``, and a channel
    for one of its runners."""
    worker = Worker(japp, WorkerOptions(concurrency=1, app_spec=APP_SPEC))
    runner = Controlled(worker, plan)
    worker.executor.runners[Pool.ASYNC] = runner  # type: ignore[index]
    return worker, runner, trio.open_memory_channel[Delivery](10)


def verdicts(worker: Worker) -> list[tuple[str | None, Verdict]]:
    return [(s.delivery.job_id, s.verdict) for s in worker.settler.pending]


async def test_a_revoked_job_ends_as_revoked_and_its_runner_goes_on_with_a_fresh_scope(
    japp: Stem,
) -> None:
    worker, runner, (send, recv) = one_runner(japp, {"A": "block"})
    a = add_job("A", 1)
    send.send_nowait(a)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker._runner, recv, 0)
        await trio.testing.wait_all_tasks_blocked()
        assert runner.started == ["A"]
        worker.revocations.cancel([a])  # what the revocation poll does
        send.send_nowait(add_job("B", 2))
        send.send_nowait(add_job("C", 3))
        send.close()
    assert verdicts(worker) == [
        ("A", Verdict.REVOKED), ("B", Verdict.COMPLETE), ("C", Verdict.COMPLETE)
    ]  # fmt: skip
    assert runner.started == ["A", "B", "C"]
    assert worker.revocations._running == {}


async def test_a_revocation_that_lands_as_its_job_returns_leaves_the_job_settled(
    japp: Stem,
) -> None:
    # The job's own run cancels its scope and returns without another checkpoint: it
    # completed, so it settles as complete, and the cancel ends only the runner's next
    # take (a fresh scope then takes the next job).
    worker, _, (send, recv) = one_runner(japp, {"A": "self-revoke"})
    for n, job_id in enumerate("AB", 1):
        send.send_nowait(add_job(job_id, n))
    send.close()
    await worker._runner(recv, 0)
    assert verdicts(worker) == [("A", Verdict.COMPLETE), ("B", Verdict.COMPLETE)]
