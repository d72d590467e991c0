"""The worker's ThreadPool keeps what ``trio.to_thread.run_sync`` promised its callers."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable

import pytest
import sniffio
import trio
import trio.testing

from stem import Stem
from stem.task import Pool
from stem.worker import Worker, WorkerOptions
from stem.worker.threads import ThreadPool
from tests.apps import jobs

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


def _blocked(gate: threading.Event, started: threading.Event, value: str = "done") -> str:
    started.set()
    if not gate.wait(30):
        raise AssertionError("the test never opened the gate")
    return value


async def _until(predicate: Callable[[], bool], what: str) -> None:
    """Poll with a deadline (thread state is not something trio can wait on)."""
    with trio.fail_after(30):
        while not predicate():
            await trio.sleep(0.005)
    assert predicate(), what


async def test_a_call_returns_its_result_and_raises_its_error() -> None:
    async with ThreadPool("t", 2) as pool:
        assert await pool.run(lambda: threading.current_thread().name) == "t-1"
        with pytest.raises(ValueError, match="boom"):
            await pool.run(lambda: int("boom"))
        assert await pool.run(lambda: 2 + 3) == 5  # the thread survived the error


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
async def test_keyboard_interrupt_and_system_exit_reach_the_caller(
    exc: type[BaseException],
) -> None:
    def fn() -> None:
        raise exc

    async with ThreadPool("t", 1) as pool:
        with pytest.raises(exc):
            await pool.run(fn)
        assert await pool.run(lambda: "alive") == "alive"


async def test_the_call_sees_the_callers_contextvars_in_a_copy() -> None:
    def fn() -> tuple[str, bool]:
        seen = var.get()
        var.set("set in the thread")  # a copy: not the caller's
        try:
            sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            return seen, False
        return seen, True

    var.set("the caller's")
    async with ThreadPool("t", 1) as pool:
        assert await pool.run(fn) == ("the caller's", False)  # no trio in the thread
    assert var.get() == "the caller's"


async def test_a_cancel_waits_for_a_call_that_is_not_abandoned() -> None:
    gate, started = threading.Event(), threading.Event()
    got: list[str] = []
    async with ThreadPool("t", 1) as pool, trio.open_nursery() as nursery:

        async def caller() -> None:
            with trio.CancelScope() as scope:
                scope_box.append(scope)
                got.append(await pool.run(lambda: _blocked(gate, started)))
                await trio.lowlevel.checkpoint()  # the cancel lands here, after the result
                got.append("not cancelled")

        scope_box: list[trio.CancelScope] = []
        nursery.start_soon(caller)
        await _until(started.is_set, "the call started")
        scope_box[0].cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert got == []  # still waiting for the thread
        gate.set()
    assert got == ["done"]


async def test_a_cancel_abandons_an_abandonable_call_and_drops_its_result() -> None:
    gate, started = threading.Event(), threading.Event()
    async with ThreadPool("t", 1) as pool:
        with trio.move_on_after(0.05) as scope:
            await pool.run(lambda: _blocked(gate, started), abandon_on_cancel=True)
        assert scope.cancelled_caught
        assert started.is_set() and not gate.is_set()  # returned while the call runs on
        gate.set()
        assert await pool.run(lambda: "next") == "next"  # same thread, after the late one


async def test_a_queued_call_runs_despite_a_cancel_unless_it_is_abandonable() -> None:
    gate, started = threading.Event(), threading.Event()
    ran: list[str] = []
    async with ThreadPool("t", 1) as pool, trio.open_nursery() as nursery:
        nursery.start_soon(lambda: pool.run(lambda: _blocked(gate, started)))
        await _until(started.is_set, "the first call started")
        with trio.move_on_after(0.05) as dropped:  # both queued behind it: the only thread
            await pool.run(lambda: ran.append("abandonable"), abandon_on_cancel=True)
        with trio.CancelScope() as waited:

            async def cancel_then_open() -> None:
                await trio.testing.wait_all_tasks_blocked()  # the call below is queued
                waited.cancel()
                gate.set()

            nursery.start_soon(cancel_then_open)
            await pool.run(lambda: ran.append("not abandonable"))  # runs, is waited for
            await trio.lowlevel.checkpoint()  # where the cancel lands
        assert dropped.cancelled_caught and waited.cancelled_caught
    assert ran == ["not abandonable"]


async def test_at_most_max_threads_calls_run_at_once_and_no_call_waits_below_it() -> None:
    lock, running, peak = threading.Lock(), [0], [0]
    barrier = threading.Barrier(3, timeout=30)  # three calls must run together to pass

    def fn() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            barrier.wait()
        finally:
            with lock:
                running[0] -= 1

    async with ThreadPool("t", 3) as pool:
        async with trio.open_nursery() as nursery:
            for _ in range(9):
                nursery.start_soon(pool.run, fn)
        assert pool.threads == 3
    assert peak[0] == 3


async def test_closing_joins_every_thread_but_one_busy_with_an_abandoned_call() -> None:
    gate, started = threading.Event(), threading.Event()
    names = {"p-1", "p-2"}
    both = threading.Barrier(2, timeout=30)  # two calls at once: two threads
    async with ThreadPool("p", 2) as pool:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.run, both.wait)
            nursery.start_soon(pool.run, both.wait)
        assert pool.threads == 2
    assert pool.threads == 0
    assert not names & {t.name for t in threading.enumerate()}

    async with ThreadPool("q", 2) as pool:
        with trio.move_on_after(0.05):
            await pool.run(lambda: _blocked(gate, started), abandon_on_cancel=True)
    assert pool.threads == 1  # the close did not wait for it
    gate.set()
    await _until(lambda: pool.threads == 0, "the abandoned call's thread ended on its own")
    with pytest.raises(RuntimeError, match="closed"):
        await pool.run(lambda: None)


async def test_a_worker_runs_thread_jobs_in_its_pool_with_the_job_context_then_joins_it(
    japp: Stem,
) -> None:
    options = WorkerOptions(concurrency=3, prefetch=0, pool=Pool.THREADS)  # whoami: threads
    worker = Worker(japp, options)
    handles = [jobs.whoami.enqueue() for _ in range(6)]
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.serve)
        for handle in handles:
            info = await handle.result_async(30)
            assert info["id"] == handle.id  # stem.current_job() in the job thread
        assert 1 <= worker.job_threads.threads <= 3
        worker.request_stop()
    assert worker.stopped.is_set()
    assert worker.job_threads.threads == 0  # joined before serve() returned
    # The broker threads too, but for an abandoned wait for jobs: it ends within its 1 s.
    await _until(lambda: worker.threads.threads == 0, "the broker threads ended")


async def test_queued_counts_the_calls_no_thread_has_taken_yet() -> None:
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        taken.set()
        release.wait()

    with trio.fail_after(30):
        async with ThreadPool("q", 1) as pool, trio.open_nursery() as nursery:
            assert pool.queued == 0
            nursery.start_soon(pool.run, hold)
            while not taken.is_set():  # the one thread holds it
                await trio.sleep(0.001)
            assert pool.queued == 0
            nursery.start_soon(pool.run, lambda: None)
            while pool.queued != 1:  # no thread is free to take this one
                await trio.sleep(0.001)
            release.set()
            while pool.queued:
                await trio.sleep(0.001)


async def test_calls_that_return_while_trio_is_busy_are_delivered_in_one_wake_up() -> None:
    pool = ThreadPool("batch", 8)
    deliver = pool._deliver
    deliveries = 0

    def counting() -> None:
        nonlocal deliveries
        deliveries += 1
        deliver()

    pool._deliver = counting  # type: ignore[method-assign]
    together = threading.Barrier(8)
    results: dict[int, int] = {}

    async def one(i: int) -> None:
        results[i] = await pool.run(lambda: (together.wait(30), i)[1])

    with trio.fail_after(30):
        async with pool, trio.open_nursery() as nursery:
            for i in range(8):
                nursery.start_soon(one, i)
            await trio.testing.wait_all_tasks_blocked()
            # Trio's thread held (no await) until all eight have returned: each thread
            # finds a delivery already asked for and adds its result to it.
            deadline = time.monotonic() + 30
            while len(pool._done) < 8:
                assert time.monotonic() < deadline, "the calls never returned"
                time.sleep(0.001)
    assert results == {i: i for i in range(8)}  # each caller got its own result
    assert deliveries == 1
