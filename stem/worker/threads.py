"""``ThreadPool``: the worker's own threads for blocking calls, cheaper than ``trio.to_thread``.

A worker hands every broker call, and every job of the thread pool, to a thread. Through
``trio.to_thread.run_sync`` each hand-off cost 100-175 us (a limiter acquire, checkpoints,
its thread cache and from-thread plumbing); here it is one ``SimpleQueue.put``, one
``run_sync_soon`` and one ``reschedule``: about 25 us (docs/performance.md).

::

    trio task ──put(call)──> SimpleQueue ──get──> N persistent threads (started on demand)
        ^                                               │ ctx.run(fn) under outcome.capture
        └──reschedule(task, outcome)── run_sync_soon ───┘ (one for all the calls that
                                                           return before trio gets to it)

Semantics kept from ``trio.to_thread.run_sync``: a cancel before ``run`` is called means
the call never runs; once called, a cancel waits for it to return (the default: callers
rely on it running, e.g. a settle), or, with ``abandon_on_cancel``, raises ``Cancelled``
at once and drops the late result (a call still queued then never runs). At most
``max_threads`` calls run at once (the rest wait in the queue, in order). The call runs
in a copy of the caller's context (contextvars: the current job, the OTel span), with
sniffio's async-library variable cleared as in a ``to_thread`` thread. What the call
raises, ``KeyboardInterrupt`` and ``SystemExit`` included, is raised in the caller.
Unlike ``to_thread``, a call cannot use ``trio.from_thread`` without a ``trio_token``.

The pool is an async context manager: on exit, its threads stop and are joined, except a
thread still busy with an abandoned call, which stops on its own once that returns
(threads are daemons: an abandoned call never holds up the process's exit).
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import outcome
import sniffio
import trio

T = TypeVar("T")

_QUEUED, _RUNNING, _DROPPED = 0, 1, 2  # a call's state (a dropped one never runs, or is abandoned)


class _Call(Generic[T]):
    """One call in flight: what to run, where, and whom to wake with the result."""

    __slots__ = ("abandon", "context", "fn", "state", "task")

    def __init__(self, fn: Callable[[], T], abandon: bool) -> None:
        self.fn = fn
        self.abandon = abandon
        self.context = contextvars.copy_context()
        self.context.run(sniffio.current_async_library_cvar.set, None)
        self.task = trio.lowlevel.current_task()
        self.state = _QUEUED


class ThreadPool:
    """Up to ``max_threads`` named daemon threads, started as calls need them and kept."""

    def __init__(self, name: str, max_threads: int) -> None:
        if max_threads < 1:
            raise ValueError("a thread pool needs at least one thread")
        self.name = name
        self.max_threads = max_threads
        self._queue: queue.SimpleQueue[_Call[Any] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards the counts below and each call's state
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting on the queue
        self._backlog = 0  # calls put on the queue, not yet taken
        self._busy: dict[threading.Thread, _Call[Any]] = {}  # thread -> the call it runs
        # Returned calls whose callers trio has not woken yet, and whether a delivery of
        # them is already asked of trio (run_sync_soon).
        self._done: list[tuple[_Call[Any], outcome.Outcome[Any]]] = []
        self._wake_pending = False
        self._closed = False

    @property
    def queued(self) -> int:
        """Calls handed to the pool that no thread has taken yet (read without the lock:
        a hint, e.g. whether a job thread is about to want the GIL)."""
        return self._backlog

    @property
    def threads(self) -> int:
        """Threads started and not yet stopped."""
        return sum(t.is_alive() for t in self._threads)

    async def run(self, fn: Callable[[], T], *, abandon_on_cancel: bool = False) -> T:
        """``fn()`` in one of the pool's threads (see the module docstring)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise RuntimeError(f"thread pool {self.name} is closed")
        call = _Call(fn, abandon_on_cancel)
        with self._lock:
            self._backlog += 1
            start = self._backlog > self._idle and len(self._threads) < self.max_threads
            if start:
                thread = threading.Thread(
                    target=self._serve,
                    args=(trio.lowlevel.current_trio_token(),),
                    name=f"{self.name}-{len(self._threads) + 1}",
                    daemon=True,
                )
                self._threads.append(thread)
        if start:
            thread.start()
        self._queue.put(call)

        def abort(_: Any) -> trio.lowlevel.Abort:
            if not call.abandon:  # it runs, even if still queued: wait for its result
                return trio.lowlevel.Abort.FAILED
            with self._lock:
                call.state = _DROPPED  # never runs if still queued, else runs on unheard
            return trio.lowlevel.Abort.SUCCEEDED

        result: T = await trio.lowlevel.wait_task_rescheduled(abort)
        return result

    def _serve(self, token: trio.lowlevel.TrioToken) -> None:
        me = threading.current_thread()
        while True:
            with self._lock:
                self._idle += 1
            call = self._queue.get()
            with self._lock:
                self._idle -= 1
                if call is None:  # close(): this thread's stop signal
                    return
                self._backlog -= 1
                if call.state == _DROPPED:  # cancelled before it started
                    continue
                call.state = _RUNNING
                self._busy[me] = call
            result = outcome.capture(call.context.run, call.fn)
            with self._lock:
                del self._busy[me]
                self._done.append((call, result))
                wake = not self._wake_pending  # else trio is to deliver it with the rest
                self._wake_pending = True
            if not wake:
                continue
            try:
                token.run_sync_soon(self._deliver)
            except trio.RunFinishedError:  # abandoned, outlived trio.run
                pass
            except BaseException:
                # Not asked after all: the next call to return asks again, for these too
                # (else no result of this pool would ever be delivered again).
                with self._lock:
                    self._wake_pending = False
                raise

    def _deliver(self) -> None:
        """In trio's thread: wake the caller of every call that has returned since the
        last delivery (threads that finish while one is pending add to it instead of
        each writing to trio's wake-up socket: docs/performance.md, Change 20)."""
        with self._lock:
            done, self._done = self._done, []
            self._wake_pending = False
        for call, result in done:
            if call.state != _DROPPED:  # else abandoned: nobody waits, the result is dropped
                trio.lowlevel.reschedule(call.task, result)

    async def aclose(self) -> None:
        """Stop the threads; wait for those not busy with an abandoned call to end."""
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)
        with self._lock:
            left = {t for t, call in self._busy.items() if call.state == _DROPPED}
        waits = [t for t in self._threads if t not in left]
        if waits:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_join_all, waits)

    async def __aenter__(self) -> ThreadPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _join_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()
