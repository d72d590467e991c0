"""Where a task's function runs: in the worker's event loop, a thread, or a child process.

Every runner has ``async run(task, ctx, soft_s, hard_s) -> result`` and raises what the
task raised. Time limits:

- async: the soft limit cancels the task at its next ``await`` and records
  ``SoftTimeLimitExceeded``; the hard limit records ``HardTimeLimitExceeded``.
- threads: the soft limit raises ``SoftTimeLimitExceeded`` inside the thread (at the next
  Python bytecode); a thread cannot be killed, so at the hard limit it is abandoned, the
  job is recorded as ``HardTimeLimitExceeded`` and the thread's eventual result ignored.
- processes: the soft limit raises ``SoftTimeLimitExceeded`` inside the child (SIGALRM);
  at the hard limit the child is killed and replaced. The only pool that can stop a
  ``while True: pass``.
"""

from __future__ import annotations

import ctypes
import threading
from typing import TYPE_CHECKING, Any

import trio

from stem.context import JobContext, reset_current, set_current
from stem.errors import HardTimeLimitExceeded, RemoteTaskError, SoftTimeLimitExceeded
from stem.worker.process_pool import ProcessPool

if TYPE_CHECKING:
    from stem.task import Task

__all__ = ["AsyncRunner", "ProcessPool", "RemoteTaskError", "ThreadRunner"]


def _limits(soft_s: float | None, hard_s: float | None) -> tuple[float, float]:
    inf = float("inf")
    return (soft_s or inf, hard_s or inf)


class AsyncRunner:
    """Runs async tasks as trio tasks in the worker process."""

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
    """Runs sync tasks in worker threads, at most ``size`` at once."""

    def __init__(self, size: int) -> None:
        self.limiter = trio.CapacityLimiter(size)

    async def run(
        self, task: Task[Any, Any], ctx: JobContext, soft_s: float | None, hard_s: float | None
    ) -> Any:
        soft, hard = _limits(soft_s, hard_s)
        ident: list[int] = []

        def call() -> Any:
            ident.append(threading.get_ident())
            token = set_current(ctx)
            try:
                return task.fn(*ctx.args, **ctx.kwargs)
            finally:
                reset_current(token)

        async def soft_alarm() -> None:
            await trio.sleep(soft)
            if ident:
                _raise_in_thread(ident[0], SoftTimeLimitExceeded)

        failed: Exception | None = None
        async with trio.open_nursery() as nursery:
            if soft < hard:
                nursery.start_soon(soft_alarm)
            with trio.move_on_after(hard) as scope:
                try:
                    result = await trio.to_thread.run_sync(
                        call, limiter=self.limiter, abandon_on_cancel=True
                    )
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


def _raise_in_thread(ident: int, exc: type[BaseException]) -> None:
    # CPython's documented hook for asynchronous exceptions; delivered at the thread's
    # next bytecode (not while it is blocked inside a C call such as time.sleep).
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc))
