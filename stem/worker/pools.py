"""Where a task's function runs: in the worker's event loop, a thread, or a child process.

Every runner has ``async run(task, ctx, soft_s, hard_s) -> result`` and raises what the
task raised. Time limits:

- async: the soft limit cancels the task at its next ``await`` and records
  ``SoftTimeLimitExceeded``; the hard limit records ``HardTimeLimitExceeded``.
- threads: the soft limit raises ``SoftTimeLimitExceeded`` inside the thread (at the next
  Python bytecode); a thread cannot be killed, so at the hard limit it is abandoned, the
  job is recorded as ``HardTimeLimitExceeded`` and the thread's eventual result ignored
  (the thread keeps its place among the ``concurrency`` job threads until it returns).
- processes: the soft limit raises ``SoftTimeLimitExceeded`` inside the child (SIGALRM);
  at the hard limit the child is killed and replaced. The only pool that can stop a
  ``while True: pass``.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from typing import TYPE_CHECKING, Any

import trio

from stem.context import JobContext, reset_current, set_current
from stem.errors import HardTimeLimitExceeded, RemoteTaskError, SoftTimeLimitExceeded
from stem.task import Pool
from stem.worker.process_pool import ProcessPool
from stem.worker.threads import ThreadPool

if TYPE_CHECKING:
    from stem.task import Task
    from stem.worker.execute import Runner

__all__ = ["AsyncRunner", "ProcessPool", "RemoteTaskError", "ThreadRunner", "pool_runners"]


def _limits(soft_s: float | None, hard_s: float | None) -> tuple[float, float]:
    inf = float("inf")
    return (soft_s or inf, hard_s or inf)


class AsyncRunner:
    """Runs async tasks as trio tasks in the worker process."""

    hands_over = False  # a task that never awaits runs without a schedule point

    async def run(
        self, task: Task[Any, Any], ctx: JobContext, soft_s: float | None, hard_s: float | None
    ) -> Any:
        soft, hard = _limits(soft_s, hard_s)
        limit = min(soft, hard)
        token = set_current(ctx)
        try:
            if limit == float("inf"):  # no limit: no cancel scope (a hot path)
                return await task.fn(*ctx.args, **ctx.kwargs)
            with trio.move_on_after(limit) as scope:
                return await task.fn(*ctx.args, **ctx.kwargs)
        finally:
            reset_current(token)
        if scope.cancelled_caught:
            if soft <= hard:
                raise SoftTimeLimitExceeded(
                    f"soft time limit of {soft}s exceeded", job_id=ctx.job_id
                )
            raise HardTimeLimitExceeded(f"hard time limit of {hard}s exceeded", job_id=ctx.job_id)
        raise AssertionError("unreachable")  # pragma: no cover


class ThreadRunner:
    """Runs sync tasks in the worker's job threads, at most the pool's size at once."""

    hands_over = True  # a run that returns has waited for a job thread

    def __init__(self, threads: ThreadPool) -> None:
        self.threads = threads

    async def run(
        self, task: Task[Any, Any], ctx: JobContext, soft_s: float | None, hard_s: float | None
    ) -> Any:
        soft, hard = _limits(soft_s, hard_s)
        if soft == hard == float("inf"):  # no limit: no nursery, no alarm (a hot path)
            call = functools.partial(_call, task, ctx, None)
            return await self.threads.run(call, abandon_on_cancel=True)  # revoked, stopped
        running: list[int] = []  # the thread's ident, while the task's function runs
        lock = threading.Lock()

        async def soft_alarm() -> None:
            await trio.sleep(soft)
            with lock:  # raised only while the function runs: never in the next job
                if running:
                    _raise_in_thread(running[0], SoftTimeLimitExceeded)

        failed: Exception | None = None
        async with trio.open_nursery() as nursery:
            if soft < hard:
                nursery.start_soon(soft_alarm)
            with trio.move_on_after(hard) as scope:
                try:
                    call = functools.partial(_call, task, ctx, (running, lock))
                    result = await self.threads.run(call, abandon_on_cancel=True)
                except Exception as exc:  # the task's own error: kept out of the nursery,
                    failed = exc  # which would wrap it in an ExceptionGroup (Retry unseen)
            nursery.cancel_scope.cancel()
        if failed is not None:
            raise failed
        if scope.cancelled_caught:
            raise HardTimeLimitExceeded(
                f"hard time limit of {hard}s exceeded (thread abandoned)", job_id=ctx.job_id
            )
        return result


def _call(
    task: Task[Any, Any], ctx: JobContext, running: tuple[list[int], threading.Lock] | None
) -> Any:
    """The task's function, in a job thread; ``running`` holds its ident meanwhile."""
    token = set_current(ctx)
    try:
        if running is None:
            return task.fn(*ctx.args, **ctx.kwargs)
        with running[1]:
            running[0].append(threading.get_ident())
        try:
            return task.fn(*ctx.args, **ctx.kwargs)
        finally:
            try:
                with running[1]:
                    running[0].clear()
            except SoftTimeLimitExceeded:
                # The alarm took the lock as the function returned, and raised here while
                # this thread waited for it: the function's result or error stands.
                pass
    finally:
        reset_current(token)


def pool_runners(
    jobs: ThreadPool, processes: ProcessPool | None, forced: Pool | None
) -> dict[Pool, Runner]:
    """A worker's runner for each pool: the process pool's tasks run in ``jobs`` threads
    when it has no ``processes`` (no app spec); ``forced`` (``--pool``) runs every sync
    task in that one pool."""
    threads = ThreadRunner(jobs)
    runners: dict[Pool, Runner] = {
        Pool.ASYNC: AsyncRunner(),
        Pool.THREADS: threads,
        Pool.PROCESSES: threads if processes is None else processes,
    }
    if forced is not None:
        runners[Pool.THREADS] = runners[Pool.PROCESSES] = runners[forced]
    return runners


def _raise_in_thread(ident: int, exc: type[BaseException]) -> None:
    # CPython's documented hook for asynchronous exceptions; delivered at the thread's
    # next bytecode (not while it is blocked inside a C call such as time.sleep).
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc))
