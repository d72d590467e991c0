"""``Worker``: fetch with a bound, run under a concurrency limit, settle in batches.

::

    fetch loop ──> channel ──> N runners ──> settle queue ──> settle loop ──> Redis
        ^  (holds <= concurrency + prefetch)  ^                 (one round trip per batch,
        │                                     └──── full: ───── two in flight; settle.py)
        │                                      the settle brings the next jobs back
        └── lease keeper thread renews every held job; promote loop moves due delays;
            revoke loop cancels running jobs an operator revoked (--terminate)

Shutdown (``request_stop``, or SIGTERM/SIGINT through ``run``): stop fetching; hand
prefetched jobs back at once; let running jobs finish for up to ``stop_timeout_s``; then
cancel what still runs and hand it back too; flush settlements; remove the heartbeat.
``request_stop(immediate=True)`` (a second SIGINT) skips the wait. Either way every held
job ends settled or back on its stream for immediate redelivery.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import trio
from trio_util import AsyncValue

from stem.broker import Delivery, PendingFetch, Settlement, WorkerBroker
from stem.config import PrefetchSetting, parse_prefetch
from stem.delays import promote_round
from stem.errors import BrokerUnavailable, ConfigError, OutsideError
from stem.middleware.base import Middleware
from stem.middleware.retries import Retries
from stem.observe.events import QUIET_TASKS_ENV, JobEvents
from stem.observe.metrics import JobStats, Meters, observe_counter, observe_gauge
from stem.observe.tracing import Tracing
from stem.task import Pool
from stem.worker.execute import Executor
from stem.worker.lease import HeldJobs, LeaseKeeper
from stem.worker.limits import LimitBook
from stem.worker.naming import default_name, live_holder
from stem.worker.pools import ProcessPool, pool_runners
from stem.worker.prefetch import Prefetch
from stem.worker.revoke import RunningJobs
from stem.worker.settle import FetchGate, Settler
from stem.worker.threads import ThreadPool

if TYPE_CHECKING:
    from stem.app import Stem

log = logging.getLogger("stem.worker")

P = ParamSpec("P")
T = TypeVar("T")

HEARTBEAT_INTERVAL_S = 2.0
HEARTBEAT_TTL_S = 10.0
BROKER_THREADS = 16  # the most broker calls at once: about 4 in steady state, plus abandoned
#: Commands ``stem worker`` sends (the worker's control list, read with each heartbeat).
STOP = "stop"  # the same graceful stop as SIGTERM
PING = "ping:"  # followed by a nonce that the worker puts in its record as ``pong``


@dataclass(frozen=True)
class WorkerOptions:
    """Settings of one worker process (every CLI flag maps onto one field)."""

    queues: tuple[str, ...] = ("default",)
    weights: tuple[int, ...] | None = None  # None: strict priority in queue order
    concurrency: int = 10
    prefetch: PrefetchSetting = "auto"  # or a number of jobs (prefetch.py)
    pool: Pool | None = None  # None: each task's own pool
    burst: bool = False
    stop_timeout_s: float = 25.0
    name: str | None = None
    app_spec: str | None = None  # module:attr, needed by the process pool
    max_tasks_per_child: int = 10_000
    max_memory_mb: float = 512.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError("concurrency must be >= 1")
        # "5" becomes 5; a ConfigError when it is neither auto nor a number >= 0.
        object.__setattr__(self, "prefetch", parse_prefetch(self.prefetch))
        if not self.queues:
            raise ConfigError("a worker needs at least one queue")
        if self.weights is not None and (
            len(self.weights) != len(self.queues) or min(self.weights) < 1
        ):
            raise ConfigError("queue weights must be positive integers, one per queue")
        if self.stop_timeout_s < 0:
            raise ConfigError("stop_timeout_s must be >= 0")


#: Give up the GIL and the CPU to another runnable thread (a no-op where unsupported).
_yield_cpu: Callable[[], None] = getattr(os, "sched_yield", lambda: None)

#: Under --prefetch auto: when every slot has run one job this long, the jobs held ahead
#: beyond the prefetch now go back to the queue for other workers (``_shed_loop``).
SHED_AFTER_S = 1.0

#: How long a stop waits for a fetch under way (blocked on a dead connection, at worst).
FETCH_CLOSE_DEADLINE_S = 3.0


async def _next_job(recv: trio.MemoryReceiveChannel[Delivery], waited: bool) -> Delivery | None:
    """A runner's next job, None once the channel is closed and empty.

    ``receive`` ends with a schedule point even when a job is waiting; after a run that
    ``waited`` for a thread or a process, trio has scheduled the other tasks already, so
    a waiting job is taken at once (a thread-pool job then wakes its runner once, not
    twice: docs/performance.md, Change 16). After any other run (an async task, a job
    refused before it ran) the runner yields first, as ``receive`` would. Cancellation
    is checked before a job is taken, as in ``receive``, so a cancelled runner takes none;
    the runner's scope relies on it (Change 17): a revocation that landed as the last
    job returned must end the take, not the next job.
    """
    if not waited:
        await trio.lowlevel.cancel_shielded_checkpoint()
    await trio.lowlevel.checkpoint_if_cancelled()
    try:
        return recv.receive_nowait()
    except trio.WouldBlock:
        try:
            return await recv.receive()
        except trio.EndOfChannel:
            return None
    except trio.EndOfChannel:
        return None


def _hand_to_runners(
    got: list[Delivery], send: trio.MemorySendChannel[Delivery], scope: trio.CancelScope
) -> bool:
    """Queue fetched jobs for the runners; False when the worker is stopping.

    A stop can come while a fetch runs (in a thread: it cannot be cancelled) and close
    the runners' channel: the jobs are held, so the final hand-back returns them.
    """
    if got and scope.cancel_called:
        return False
    for d in got:
        send.send_nowait(d)
    return True


async def _hand_woken(
    got: list[Delivery], send: trio.MemorySendChannel[Delivery], scope: trio.CancelScope
) -> bool:
    """``_hand_to_runners`` for the jobs a wait brought to idle runners, which then start
    before the next wait is sent: its thread hop would otherwise compete with them for
    the GIL (latency p50 -0.3 ms at 200 jobs/s, docs/performance.md, Change 14). Two
    scheduling passes, since trio runs each batch of tasks in either order."""
    if not _hand_to_runners(got, send, scope):
        return False
    if got:
        await trio.lowlevel.cancel_shielded_checkpoint()
        await trio.lowlevel.cancel_shielded_checkpoint()
    return True


class _Handoff:
    """Hands a wait sent in a broker thread to the trio task that asked for it, unless
    that task gave up first (a stop): then the thread ends the wait itself."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gave_up = False
        self._sent: PendingFetch | None = None

    def wanted(self) -> bool:
        """In the thread, before sending: False once the task gave up."""
        with self._lock:
            return not self._gave_up

    def hand(self, pending: PendingFetch) -> bool:
        """In the thread: False when the task gave up (the thread keeps ``pending``);
        else the task owns it, and a ``give_up`` after this returns it."""
        with self._lock:
            self._sent = pending
            return not self._gave_up

    def give_up(self) -> PendingFetch | None:
        """In the task: what the thread handed already (its result is dropped), if any."""
        with self._lock:
            self._gave_up = True
            return self._sent


def worker_middleware(app: Stem) -> list[Middleware]:
    """The worker's middleware: tracing, job-event logs, job stats and meters, retries, then
    the app's.

    ``after_*`` hooks run in reverse, so ``JobEvents``, ``JobStats`` and ``Meters`` see the
    outcome ``Retries`` decided, while the consumer span is still current. An app that
    registers its own ``JobEvents``, ``Tracing`` or ``Meters`` has that one used in its
    place; ``JobStats`` (the heartbeat's per-task counts) is always the worker's own.
    """
    mine = JobEvents | Tracing | Meters | JobStats
    own = [m for m in app.middleware if not isinstance(m, mine)]
    tracing = next((m for m in app.middleware if isinstance(m, Tracing)), None) or Tracing()
    events = next((m for m in app.middleware if isinstance(m, JobEvents)), None)
    if events is None:
        quiet = {t.name for t in app.tasks.values() if not t.log_events}
        quiet |= {n.strip() for n in os.environ.get(QUIET_TASKS_ENV, "").split(",") if n.strip()}
        events = JobEvents(quiet)
    meters = next((m for m in app.middleware if isinstance(m, Meters)), None) or Meters()
    return [tracing, events, JobStats(), meters, Retries(), *own]


class Worker:
    """One worker process's job loop. ``serve()`` runs it; see the module docstring."""

    def __init__(self, app: Stem, options: WorkerOptions) -> None:
        self.app = app
        self.options = options
        self.broker: WorkerBroker = app.broker
        self.name = options.name or default_name()
        self.prefetch = Prefetch(options.concurrency, options.prefetch)
        self.held = HeldJobs()
        self.lease = LeaseKeeper(self.broker, self.name, self.held, app.lease_s)
        #: The process pool when the worker has an app spec to start children with.
        self.pool: ProcessPool | None = None
        if options.app_spec:
            self.pool = ProcessPool(
                options.app_spec,
                options.concurrency,
                max_tasks_per_child=options.max_tasks_per_child,
                max_memory_mb=options.max_memory_mb,
            )
        self.threads = ThreadPool("stem-broker", BROKER_THREADS)  # separate: jobs never
        self.job_threads = ThreadPool("stem-job", options.concurrency)  # delay broker calls
        middleware = worker_middleware(app)
        self.job_stats = next(m for m in middleware if isinstance(m, JobStats))
        runners = pool_runners(self.job_threads, self.pool, options.pool)
        self.executor = Executor(app, runners, middleware)
        self.limits = LimitBook(app.limit_specs(), self.broker)
        self._register_meters()
        self.started_at = time.time()
        self.stopped = trio.Event()  # set once serve() has fully cleaned up
        self._stop = trio.Event()
        self._immediate = False
        self._work_scope: trio.CancelScope | None = None  # cancelled by an immediate stop
        self.revocations = RunningJobs()  # cancels running jobs that get revoked
        self._pong = ""  # the nonce of the last `stem worker ping`, shown in the heartbeat
        self._live_runners = AsyncValue(0)  # runner tasks not yet finished
        # An abandoned wait's thread (or a settle's fetch) may still fetch: the gate
        # orders that fetch before the final hand-back, or refuses it.
        self._fetch_gate = FetchGate()
        # Settling: runners and recovery submit; the settle loop sends batches.
        self.settler = Settler(
            self.broker, self.name, self.held, self._call, capacity=self.prefetch.capacity,
            queues=options.queues, limits=lambda: self.limits.current, gate=self._fetch_gate,
        )  # fmt: skip
        self._drained = False  # whether the last _fetch emptied every queue it read

    def _register_meters(self) -> None:
        """OTel instruments read from the worker's own counters at each collection
        (nothing registered while metrics are off)."""
        me = {"stem.worker": self.name}
        lease, pool = self.lease, self.pool
        observe_counter(
            "stem.leases.renewed", "{lease}", "Job leases renewed.",
            lambda: [(lease.renewed_jobs, me)],
        )  # fmt: skip
        observe_counter(
            "stem.leases.lost", "{lease}", "Job leases lost (taken over after a stall).",
            lambda: [(lease.lost, me)],
        )  # fmt: skip
        if pool is not None:
            observe_gauge(
                "stem.pool.children", "{process}", "Process-pool children alive.",
                lambda: [(pool.children, me)],
            )  # fmt: skip
            observe_counter(
                "stem.pool.children.replaced", "{process}", "Pool children replaced.",
                lambda: [(pool.replaced, me)],
            )  # fmt: skip

    def request_stop(self, *, immediate: bool = False) -> None:
        """Begin a graceful stop (or an immediate one: running jobs are handed back now)."""
        self._immediate = self._immediate or immediate
        self._stop.set()
        if immediate and self._work_scope is not None:
            self._work_scope.cancel()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until stopped; on return, every job this worker held is settled or handed back."""
        async with self.threads, self.job_threads:  # their threads are joined on the way out
            await self._serve(task_status)

    async def _serve(self, task_status: trio.TaskStatus[None]) -> None:
        await self._claim_name()
        self.lease.start()
        try:
            async with trio.open_nursery() as services:
                services.start_soon(self._settle_loop)
                services.start_soon(self._heartbeat_loop)
                services.start_soon(self._promote_loop)
                services.start_soon(self.limits.serve_refresh)
                services.start_soon(self.revocations.serve_polling, self.broker)
                await self._recover_own()  # heartbeats already beat while it runs
                await self._work(task_status)
                await self._flush()
                services.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._hand_back_all()
                self.lease.stop()
                if self.pool is not None:
                    await self.pool.aclose()
                with contextlib.suppress(BrokerUnavailable):  # else it expires on its own
                    await self._call(self.broker.forget_worker, self.name)
                await self._forget_consumer()
                self.stopped.set()

    async def _work(self, task_status: trio.TaskStatus[None]) -> None:
        send, recv = trio.open_memory_channel[Delivery](math.inf)
        self._live_runners.value = self.options.concurrency
        with trio.CancelScope() as work_scope:
            self._work_scope = work_scope
            async with trio.open_nursery() as nursery:
                fetch_scope = trio.CancelScope()
                nursery.start_soon(self._fetch_loop, send, fetch_scope)
                self.settler.refill = send  # a full worker's settles refill it
                for slot in range(self.options.concurrency):
                    nursery.start_soon(self._runner, recv.clone(), slot)
                if self.options.prefetch == "auto":
                    nursery.start_soon(self._shed_loop, recv.clone(), send)
                recv.close()
                nursery.start_soon(self._stopper, send, fetch_scope, work_scope)
                task_status.started()

    async def _stopper(
        self,
        send: trio.MemorySendChannel[Delivery],
        fetch_scope: trio.CancelScope,
        work_scope: trio.CancelScope,
    ) -> None:
        await self._stop.wait()
        fetch_scope.cancel()
        self.settler.refill = None
        await send.aclose()  # runners hand back what is still queued, then finish
        if not self._immediate:
            with trio.move_on_after(self.options.stop_timeout_s):
                await self._live_runners.wait_value(0)
            if self._running:
                log.warning("stop timeout: handing %d running job(s) back", self._running)
        work_scope.cancel()

    async def _fetch_loop(
        self, send: trio.MemorySendChannel[Delivery], scope: trio.CancelScope
    ) -> None:
        with scope:
            drained = False  # the last fetch got jobs, but fewer than it asked for
            while True:
                free = self.prefetch.capacity() - len(self.held)
                if free <= 0:
                    self.settler.drained = False
                    await self.settler.settled.wait_transition()  # a settle makes room
                    drained = self.settler.drained  # its fetch emptied the queue
                    continue
                if drained and not self.options.burst:
                    # The queues were empty after that fetch: wait at once, skipping
                    # a fetch that would find nothing (a round trip, a thread hop).
                    got = await self._wait_and_fetch(1000, free)
                    drained = bool(got) and self._drained
                    if not await _hand_woken(got, send, scope):
                        return
                    continue
                try:
                    got = await self._call(self._fetch, free)
                except BrokerUnavailable as exc:
                    # Redis is down or restarting: keep running jobs, retry the fetch.
                    log.warning("fetch failed, retrying in 1 s: %s", exc)
                    await trio.sleep(1)
                    continue
                drained = bool(got) and self._drained
                if not got and self.options.burst:
                    if len(self.held):  # let the last jobs settle, then look again
                        with trio.move_on_after(1):
                            await self.settler.settled.wait_transition()
                        continue
                    if await self._call(self._idle_or_unknown):
                        log.info("burst: queues are empty, stopping")
                        self.request_stop()
                        return
                    got = await self._wait_and_fetch(100, free)
                elif not got:
                    got = await self._wait_and_fetch(1000, free)
                    drained = bool(got) and self._drained
                    if not await _hand_woken(got, send, scope):
                        return
                    continue
                if not _hand_to_runners(got, send, scope):
                    return

    async def _wait_and_fetch(self, timeout_ms: int, free: int) -> list[Delivery]:
        """Block until a job arrives, then fetch up to ``free`` with it.

        With one queue, one round trip read on this trio thread: the broker pipelines the
        blocking read and the fetch, and the replies wake no other thread
        (``_wait_here_then_fetch``). With several, one thread call that waits and then
        fetches (``_wait_then_fetch``): one thread hop, not two. ``free`` was counted
        before the wait and only settles happen meanwhile, so the bound on held jobs
        stays exact. A stop cuts the wait short (the fetch gate's close interrupts it);
        a fetch that would start after the final hand-back is refused by the gate.
        """
        try:
            got = await self._wait_here_then_fetch(timeout_ms, free)
            if got is None:
                got = await self._call_abandoning(self._wait_then_fetch, timeout_ms, free)
            return got
        except BrokerUnavailable as exc:
            log.warning("waiting for jobs failed, retrying in 1 s: %s", exc)
            await trio.sleep(1)
            return []

    async def _wait_here_then_fetch(self, timeout_ms: int, free: int) -> list[Delivery] | None:
        """With one queue: send the wait and its fetch (a thread call that returns at
        once), then read their replies on this trio thread as they arrive, so the job
        that ends the wait wakes only this thread (docs/performance.md, Change 14).
        None when the broker cannot do this: ``_wait_then_fetch`` then does.

        A wait sent is always read to its end, or given up on for the reclaimer: a stop
        ends it and records what its fetch delivered as held (``_end_wait``), for the
        final hand-back. A stop while the wait is being sent (which can take a socket
        timeout on a Redis that does not answer) does not wait for the send.
        """
        start_now = self._start_now(free)
        if len(self.options.queues) != 1 or start_now <= 0:
            return None
        with self._fetch_gate.fetching() as open_:
            if not open_:
                return []
            handoff = _Handoff()
            pending: PendingFetch | None = None
            try:
                pending = await self._call_abandoning(
                    self._begin_wait, handoff, start_now, timeout_ms
                )
                if pending is None:
                    return None
                while not pending.poll():  # poll gives up on a silent connection
                    with trio.move_on_after(1):
                        await trio.lowlevel.wait_readable(pending.fileno())
            except trio.Cancelled:
                # What the thread sent, whether or not its result reached this task.
                unread = handoff.give_up()
                if unread is not None:
                    with trio.CancelScope(shield=True):
                        await self._call(self._end_wait, unread)
                raise
            except BaseException:
                if pending is not None:
                    pending.abandon()
                raise
            got = pending.result()
            if got is None:  # Redis had lost the script: the next fetch loads it
                return []
            self.held.add(got)
            self._drained = len(got) < start_now
            return got

    def _begin_wait(self, handoff: _Handoff, count: int, timeout_ms: int) -> PendingFetch | None:
        # In a broker thread, inside the fetch gate: the final hand-back waits for it.
        with self._fetch_gate.fetching() as open_:
            if not open_:
                return None
            pending = self.broker.begin_wait_and_fetch(
                self.options.queues[0],
                self.name,
                count,
                self.limits.current,
                timeout_ms,
                send_if=handoff.wanted,  # a stop during a slow (re)connect: send nothing
            )
            if pending is None or handoff.hand(pending):
                return pending
            self._end_wait(pending)  # a stop came during the send: nobody will read it
            return None

    def _end_wait(self, pending: PendingFetch) -> None:
        """End a wait a stop came during (``interrupt_waits``) and record what its fetch
        delivered as held, so the final hand-back returns it at once; past
        ``FETCH_CLOSE_DEADLINE_S`` give up on it (its jobs, if any, are the reclaimer's).
        In a broker thread."""
        give_up = time.monotonic() + FETCH_CLOSE_DEADLINE_S
        try:
            while True:
                if pending.client_id is not None:
                    self.broker.interrupt_waits()
                if pending.wait(0.1):  # the read may start to block after the call
                    break
                if time.monotonic() > give_up:
                    pending.abandon()
                    log.warning(
                        "a wait did not end within %.0f s of the stop; jobs its fetch may "
                        "still deliver stay pending for the reclaimer",
                        FETCH_CLOSE_DEADLINE_S,
                    )
                    return
            self.held.add(pending.result() or [])
        except OutsideError as exc:
            log.warning("a wait cut short by the stop failed: %s", exc)

    def _start_now(self, free: int) -> int:
        """What a wait may fetch: only jobs for the slots free now, which start at once
        (see ``_wait_then_fetch``)."""
        return min(free, self.options.concurrency - len(self.held))

    def _wait_then_fetch(self, timeout_ms: int, free: int) -> list[Delivery]:
        # A job thread just handed a job (queued, not yet taken) goes first: it is runnable
        # on the same CPU and wants the GIL, and the wait is about to block anyway
        # (latency p50 -0.2 ms, docs/performance.md Change 12). Only then: with nothing
        # to hand over, a yield would give the CPU to another busy process for its slice.
        if self.job_threads.queued:
            _yield_cpu()
        # The fetch sent with the wait runs when a job arrives, up to a second from now,
        # and the prefetch may shrink meanwhile (slots busy with jobs growing old): it
        # takes only jobs for the slots free now, which start at once; the jobs held
        # ahead are fetched after it, at the prefetch of that moment.
        start_now = self._start_now(free)
        if len(self.options.queues) == 1 and start_now > 0:  # wait and fetch in one trip
            with self._fetch_gate.fetching() as open_:
                if not open_:
                    return []
                got = self.broker.wait_and_fetch(
                    self.options.queues[0], self.name, start_now, self.limits.current, timeout_ms
                )
                if got is not None:
                    self.held.add(got)
                    self._drained = len(got) < start_now
                    return got
        if not self.broker.wait_ready(self.options.queues, timeout_ms):
            return []
        with self._fetch_gate.fetching() as open_:  # held jobs are recorded inside
            free = self.prefetch.capacity() - len(self.held)  # counted now, after the wait
            return self._fetch(free) if open_ and free > 0 else []

    def _fetch(self, free: int) -> list[Delivery]:
        # Runs in a thread; held jobs are recorded here, before returning, so a fetch
        # that completes while the loop is being cancelled is still handed back.
        out: list[Delivery] = []
        failed: BrokerUnavailable | None = None
        for queue in self._queue_order():
            try:
                got = self.broker.fetch(queue, self.name, free - len(out), self.limits.current)
            except BrokerUnavailable as exc:
                # Fetches of other queues (on a cluster, other masters) may have
                # delivered already: those must be returned to run, not dropped with
                # the error (held, hence renewed, but never run).
                failed = failed or exc
                continue
            self.held.add(got)
            out += got
            if len(out) >= free:
                break
        if failed is not None and not out:
            raise failed
        # Every queue gave fewer than asked, none failed: all were drained by this fetch.
        self._drained = failed is None and len(out) < free
        return out

    def _queue_order(self) -> Sequence[str]:
        queues, weights = self.options.queues, self.options.weights
        if weights is None or len(queues) == 1:
            return queues
        # Weighted: each fetch picks the first queue with odds by weight, so a busy
        # high-weight queue cannot starve a low one.
        order, pool = [], list(zip(queues, weights, strict=True))
        while pool:
            pick = random.choices(range(len(pool)), [w for _, w in pool])[0]  # noqa: S311  (load spreading, not secrecy)
            order.append(pool.pop(pick)[0])
        return order

    def _idle_or_unknown(self) -> bool:
        try:
            return self._idle()
        except BrokerUnavailable:
            return False  # cannot tell: keep going, the next fetch retries

    def _idle(self) -> bool:
        # Throttled jobs still need this worker; one snapshot per queue, so a job that
        # moves between ready, waiting, delayed and held while it is read is seen.
        return all(self.broker.queue_drained(q) for q in self.options.queues)

    async def _shed_loop(
        self, recv: trio.MemoryReceiveChannel[Delivery], send: trio.MemorySendChannel[Delivery]
    ) -> None:
        """Under ``--prefetch auto``: once every slot has run its job for ``SHED_AFTER_S``,
        hand back the jobs held ahead beyond the prefetch now, so that idle workers can
        start them (those fetched just before a queue turned to long jobs; prefetch.py).
        Every slot is busy then, so no runner is taking from the channel meanwhile."""
        with recv:
            while not self._stop.is_set():
                with trio.move_on_after(SHED_AFTER_S / 2):
                    await self._stop.wait()
                if self._stop.is_set() or self.prefetch.busy_for_s() < SHED_AFTER_S:
                    continue
                waiting = recv.statistics().current_buffer_used
                keep = self.prefetch.value()
                if waiting <= keep:
                    continue
                ahead = [recv.receive_nowait() for _ in range(waiting)]  # oldest first
                for d in ahead[:keep]:
                    send.send_nowait(d)  # back in the same order; the buffer is unbounded
                for d in ahead[keep:]:
                    self.settler.hand_back(d)  # prefetched, not started
                log.info(
                    "every slot has run one job for over %.0f s: handed %d job(s) held "
                    "ahead back to the queue",
                    SHED_AFTER_S,
                    len(ahead) - keep,
                )

    async def _runner(self, recv: trio.MemoryReceiveChannel[Delivery], slot: int) -> None:
        try:
            async with recv:
                waited = True  # nothing ran yet: no yield owed
                while True:
                    # One cancel scope for this runner's jobs, replaced only after a
                    # revocation cancelled it: a scope per job cost an async no-op job
                    # 13% of its Python calls (docs/performance.md, Change 17).
                    running: Delivery | None = None
                    with trio.CancelScope() as scope:
                        while (d := await _next_job(recv, waited)) is not None:
                            waited = False
                            if self._stop.is_set():
                                self.settler.hand_back(d)  # prefetched, not started
                                continue
                            self.prefetch.start(slot)
                            self.revocations.add(d, scope)
                            running = d
                            try:
                                settlement, waited = await self.executor.execute_job(d)
                                running = None  # it returned: not revoked
                            finally:
                                self.revocations.discard(d)
                                self.prefetch.finish(slot, counted=running is None)
                            self.settler.submit(settlement)
                        return  # the channel is closed and empty
                    # The scope caught a revocation: of the job running then, if any (a
                    # cancel that came as the job returned ended only the next take).
                    if running is not None:
                        self.settler.submit(self.executor.revoked(running))
        finally:
            self._live_runners.value -= 1

    async def _settle_loop(self) -> None:
        await self.settler.serve()

    async def _flush(self) -> None:
        await self.settler.flush()

    async def _hand_back_all(self) -> None:
        closed = await self._call(
            self._fetch_gate.close, self.broker.interrupt_waits, FETCH_CLOSE_DEADLINE_S
        )
        if not closed:  # a fetch hangs on a dead connection: do not let it hold the stop
            log.warning(
                "a fetch did not return within %.0f s of the stop; jobs it may still "
                "deliver stay pending for the reclaimer",
                FETCH_CLOSE_DEADLINE_S,
            )
        if self.settler.pending:
            with trio.move_on_after(10):
                await self._flush()
        leftover = self.held.snapshot()
        if not leftover:
            return
        self.held.settling(leftover)
        try:
            n = await self._call(self.broker.release, leftover, undo_delivery=True)
            log.info("handed %d job(s) back for redelivery", n)
            self.held.remove(leftover)
        except BrokerUnavailable as exc:
            log.error("could not hand %d job(s) back (the reclaimer will): %s", len(leftover), exc)

    async def _forget_consumer(self) -> None:
        # Leave no consumer behind in the groups (only where nothing is pending: what
        # could not be handed back stays findable). Else the reclaimer prunes it later.
        with trio.move_on_after(5):  # Redis unreachable: do not hold up the exit
            for queue in self.options.queues:
                try:
                    await self._call_abandoning(self.broker.forget_consumer, queue, self.name)
                except BrokerUnavailable as exc:
                    log.warning("%s: could not remove consumer %s: %s", queue, self.name, exc)

    async def _promote_loop(self) -> None:
        while True:
            await trio.sleep(await self._call(promote_round, self.broker, self.options.queues))

    async def _heartbeat_loop(self) -> None:
        from stem.observe.heartbeat import touch_supervisor_heartbeat

        while True:
            commands = await self._beat()
            if any(c.startswith(PING) for c in commands):
                await self._beat()  # answer a ping now, not a heartbeat later
            touch_supervisor_heartbeat()
            await trio.sleep(HEARTBEAT_INTERVAL_S)

    async def _beat(self) -> list[str]:
        """One heartbeat; obeys the commands it brings back (``stem worker stop|ping``)."""
        try:
            commands = await self._call(
                self.broker.heartbeat, self.name, self.statistics(), HEARTBEAT_TTL_S
            )
        except BrokerUnavailable as exc:
            log.warning("heartbeat failed: %s", exc)
            return []
        for command in commands:
            if command == STOP:
                log.info("stop requested (stem worker stop): stopping gracefully")
                self.request_stop()
            elif command.startswith(PING):
                self._pong = command.removeprefix(PING)
            else:  # a newer CLI's command: ignore it, say so
                log.warning("ignoring unknown worker command %r", command)
        return commands

    async def _retrying(
        self, what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(*args)`` in a thread, retried every second while Redis is unreachable.

        What the fetch loop does, for the calls a worker makes while it starts: a
        connection reset between the start-up ping and these calls must not stop the
        worker (exit 3), nor lose the result of a recovered job it already ran.
        """
        while True:
            try:
                return await self._call(fn, *args, **kwargs)
            except BrokerUnavailable as exc:
                if self._stop.is_set():
                    raise
                log.warning("%s failed, retrying in 1 s: %s", what, exc)
                await trio.sleep(1)

    async def _claim_name(self) -> None:
        pid = live_holder(await self._retrying("listing workers", self.broker.workers), self.name)
        if pid is not None:
            raise ConfigError(f"worker name {self.name!r} is in use by live pid {pid}")

    async def _recover_own(self) -> None:
        """Finish what a previous run of this worker (same name) held when it died.

        Each recovered job runs alone, its delivery counted just before it starts: if one
        of them crashes the worker again, only that one counts up, and at max_deliveries
        it is dead-lettered instead of run, while the jobs that died beside it complete.
        Its settlement goes through the settle loop like any other (so a Redis outage is
        retried), and the next job starts only once Redis has it.
        """
        for queue in self.options.queues:
            mine = await self._retrying("recovery", self.broker.recover_own, queue, self.name)
            if mine:
                log.info("%s: recovering %d job(s) left by a previous run", queue, len(mine))
            for held in mine:
                settlement = await self._run_recovered(held)
                if settlement is not None:
                    await self.settler.wait_settled(self.settler.submit(settlement))

    async def _run_recovered(self, held: Delivery) -> Settlement | None:
        """Run one recovered job; None when there is nothing to settle (not ours now,
        finished meanwhile, or dead-lettered as corrupt)."""
        # Re-take the lease first: the reclaimer may have handed this entry to another
        # worker since we listed it; if so, it is theirs now.
        renewal = await self._retrying("recovery", self.broker.renew, self.name, [held])
        if renewal.not_owned:
            return None
        self.held.add([held])
        if held.envelope is not None and held.deliveries >= self.app.max_deliveries:
            return self.executor.max_deliveries(held)
        run: Delivery | None = held
        if held.envelope is not None:
            run = await self._retrying("recovery", self.broker.count_delivery, held, self.name)
        if run is None:
            self.held.remove([held])
            return None
        return await self.executor.execute(run)

    @property
    def _running(self) -> int:
        """Jobs executing now (statistics, the stop-timeout log): the busy runner slots."""
        return self.prefetch.busy

    def statistics(self) -> dict[str, Any]:
        """The heartbeat record: who this worker is and what it has done."""
        return {
            "id": self.name,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": list(self.options.queues),
            "concurrency": self.options.concurrency,
            "prefetch": self.prefetch.value(),
            "prefetch_setting": self.options.prefetch,
            "in_flight": len(self.held),
            "running": self._running,
            "processed": self.executor.processed,
            "failed": self.executor.failed,
            "retried": self.executor.retried,
            "by_queue": {
                q: {"processed": c[0], "failed": c[1], "retried": c[2]}
                for q, c in self.executor.by_queue.items()
            },
            "by_task": self.job_stats.records(),
            "lost_leases": self.lease.lost,
            "started_at": self.started_at,
            "pong": self._pong,
        }

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking ``fn`` in a broker thread; a cancel waits for it to return."""
        return await self.threads.run(functools.partial(fn, *args, **kwargs))

    async def _call_abandoning(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Like ``_call``, but a cancel returns at once and leaves the thread to finish
        on its own: for blocking waits whose result no longer matters."""
        call = functools.partial(fn, *args, **kwargs)
        return await self.threads.run(call, abandon_on_cancel=True)
