"""The settle side of a worker: settlements go to Redis in batches, two batches at most in
flight, and a batch sent while the worker is full brings the next jobs back with it.

::

    runners ──submit──> pending ──batch──> settle (round trip) ──> settled count
                                             │ worker full: settle_then_fetch
                                             └──> fetched jobs ──> the runners' channel

Why: a full worker (every slot of ``concurrency + prefetch`` held) can fetch only once a
settle has freed slots, so the plain order costs a job two round trips before the next
one starts: its settle, then the fetch that refills. Sending the fetch in the settle's
pipeline (``WorkerBroker.settle_then_fetch``) makes that one round trip, and a second
batch may go out while the first is on its way, so settles overlap instead of queueing
behind each other (docs/performance.md, "Change 6"). The fetch part asks for exactly
the slots the batch frees, counted while the batch is still held, and carries the
worker's capacity as a cap that Redis checks against what the consumer holds there: the
bound on held jobs stays exact even with two batches and their fetches in flight.

Only a worker of one queue fetches this way; with several, which queue the freed slots go
to is the fetch loop's (weighted) choice, so it refills them as before.

Settlements are counted as Redis confirms them (``settled``); a ticket from ``submit``
is reached once that many have been confirmed, which names that settlement exactly when
nothing else is in flight (recovery, which runs one job at a time).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import trio
from trio_util import AsyncBool, AsyncValue

from stem.broker import Delivery, LimitSpec, Settlement, WorkerBroker
from stem.errors import BrokerUnavailable
from stem.worker.lease import HeldJobs

log = logging.getLogger("stem.worker")

#: Settle batches in flight at once: the second overlaps the first's round trip.
MAX_IN_FLIGHT = 2
#: Pause before a settle is sent again after Redis could not be reached.
RETRY_S = 0.5

Call = Callable[..., Awaitable[Any]]


class FetchGate:
    """Lets fetches made from threads finish recording their jobs before the final
    hand-back, and refuses those that would start after it (``close``)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._closed = False
        self._running = 0

    @contextlib.contextmanager
    def fetching(self) -> Iterator[bool]:
        """Yields False once closed (fetch nothing then); else the block runs before
        ``close`` returns. Held jobs are recorded inside the block."""
        with self._cond:
            open_ = not self._closed
            self._running += open_
        try:
            yield open_
        finally:
            with self._cond:
                self._running -= open_
                self._cond.notify_all()

    def close(
        self, interrupt: Callable[[], None] | None = None, deadline_s: float | None = None
    ) -> bool:
        """No fetch starts after this returns; those under way have recorded their jobs
        (True), or ``deadline_s`` passed first (False: a fetch stuck on a dead connection;
        jobs it may still deliver stay pending in Redis for the reclaimer).

        ``interrupt`` cuts short a fetch still blocked waiting for work (the broker's
        ``interrupt_waits``); it is called again every 0.1 s while one runs, since a
        wait may start blocking just after a call.
        """
        with self._cond:
            self._closed = True
        give_up = None if deadline_s is None else time.monotonic() + deadline_s
        while True:
            if interrupt is not None and not (give_up and time.monotonic() > give_up):
                interrupt()
            with self._cond:
                if self._cond.wait_for(lambda: self._running == 0, timeout=0.1):
                    return True
            if give_up is not None and time.monotonic() > give_up:
                return False


class Settler:
    """Settles what runners submit (see the module docstring); ``serve`` is its loop."""

    def __init__(
        self,
        broker: WorkerBroker,
        consumer: str,
        held: HeldJobs,
        call: Call,
        *,
        capacity: Callable[[], int],
        queues: Sequence[str],
        limits: Callable[[], Sequence[LimitSpec]],
        gate: FetchGate,
    ) -> None:
        self.broker = broker
        self.consumer = consumer
        self.held = held
        self.call = call  # the worker's thread hop (``Worker._call``)
        self.capacity = capacity  # jobs the worker may hold now (it varies: prefetch.py)
        self.queue = queues[0] if len(queues) == 1 else None  # fetch with settles: one queue
        self.limits = limits
        self.gate = gate
        self.pending: list[Settlement] = []
        self.released: list[Delivery] = []  # prefetched during a stop: hand back
        self.wanted = AsyncBool(False)
        self.submitted = 0  # settlements ever submitted (a ticket is this count)
        self.settled = AsyncValue(0)  # of those, how many Redis has confirmed
        #: Where jobs fetched with a settle go (the runners' channel); None: fetch none.
        self.refill: trio.MemorySendChannel[Delivery] | None = None
        #: Set when a settle's fetch got fewer jobs than it asked for: the queue was
        #: drained, so the fetch loop may wait for new jobs at once.
        self.drained = False
        #: Set by a settle that failed, cleared by one that reached Redis: meanwhile
        #: settles only settle. A lost reply may hide a fetch Redis ran, whose jobs are
        #: then pending here but unknown (the reclaimer takes them back once their lease
        #: lapses, counting a delivery): fetching with every settle of an outage would
        #: strand a batch per call, so at most the calls already under way can.
        self.failing = False
        self._in_flight = AsyncValue(0)

    def submit(self, settlement: Settlement) -> int:
        """Queue ``settlement``; return its ticket (``wait_settled``)."""
        self.pending.append(settlement)
        self.submitted += 1
        self.wanted.value = True
        return self.submitted

    def hand_back(self, delivery: Delivery) -> None:
        """Hand ``delivery`` (prefetched, not started) back with the next flush."""
        self.released.append(delivery)
        self.wanted.value = True

    async def wait_settled(self, ticket: int) -> None:
        """Wait until Redis has confirmed ``ticket`` settlements (see module docstring)."""
        await self.settled.wait_value(lambda settled: settled >= ticket)

    async def serve(self) -> None:
        """Send batches as they come, up to ``MAX_IN_FLIGHT`` at once."""
        async with trio.open_nursery() as nursery:
            while True:
                await self.wanted.wait_value(True)
                await self._in_flight.wait_value(lambda n: n < MAX_IN_FLIGHT)
                self.wanted.value = False
                await self._hand_back_released(retry=True)
                if self.pending:
                    batch, self.pending = self.pending, []
                    self._in_flight.value += 1
                    nursery.start_soon(self._settle, batch, True)

    async def flush(self) -> None:
        """Settle everything submitted, one batch at a time, and wait for the batches
        ``serve`` has in flight; fetches nothing."""
        await self._hand_back_released()
        while self.pending:
            batch, self.pending = self.pending, []
            self._in_flight.value += 1
            await self._settle(batch, False)
        await self._in_flight.wait_value(0)

    async def _hand_back_released(self, *, retry: bool = False) -> None:
        """Release the jobs handed back. With ``retry`` (while the worker runs: a shed,
        see ``Worker._shed_loop``) a failure keeps them for the next try, 0.5 s later;
        without (the final flush) they stay held and ``_hand_back_all`` returns them."""
        if not self.released:
            return
        back, self.released = self.released, []
        self.held.settling(back)
        try:
            await self.call(self.broker.release, back, undo_delivery=True)
            self.held.remove(back)
        except BrokerUnavailable as exc:
            if not retry:
                log.warning("handing %d job(s) back failed: %s", len(back), exc)
                return
            # Held (leases renewed) but in no runner's channel: dropped here, they would
            # wait for the worker's stop, and fill its capacity until then.
            log.warning("handing %d job(s) back failed, retrying: %s", len(back), exc)
            self.released = back + self.released
            self.wanted.value = True
            await trio.sleep(RETRY_S)

    async def _settle(self, batch: list[Settlement], may_fetch: bool) -> None:
        """Settle ``batch`` (retried while Redis is unreachable); with ``may_fetch`` and
        the worker full, fetch the slots it frees in the same round trip."""
        deliveries = [s.delivery for s in batch]
        self.held.settling(deliveries)
        done = False
        try:
            while True:
                fetch_ok = may_fetch and not self.failing
                cap = self.capacity()
                want = self._refill_count(len(batch), cap) if fetch_ok else 0
                try:
                    if want:
                        got = await self.call(self._settle_then_fetch, batch, want, cap)
                    else:
                        await self.call(self.broker.settle, batch)
                        got = []
                    break
                except BrokerUnavailable as exc:
                    log.warning("settling %d job(s) failed, retrying: %s", len(batch), exc)
                    self.failing = True
                    await trio.sleep(RETRY_S)
            done = True
            self.failing = False
            self.held.remove(deliveries)
            if want:
                self._deliver(got, want)
            self.settled.value += len(batch)  # wakes the fetch loop and recovery
        finally:
            self._in_flight.value -= 1
            if not done:  # cancelled before Redis confirmed it: the next flush sends it
                self.pending = batch + self.pending

    def _refill_count(self, freed: int, cap: int) -> int:
        """How many jobs to fetch with a settle that frees ``freed`` slots: that many
        when the worker is full (``cap`` held; its fetch loop waits for room), else none."""
        if self.queue is None or self.refill is None:
            return 0
        room = cap - len(self.held)
        if room > 0:
            return 0  # not full: the fetch loop is fetching or waiting for new jobs
        return max(0, room + freed)  # the slots this batch frees, less any overdraw

    def _settle_then_fetch(self, batch: list[Settlement], want: int, cap: int) -> list[Delivery]:
        # Runs in a thread; the jobs are recorded as held before it returns (the gate
        # makes the final hand-back wait for that, or refuses the fetch).
        assert self.queue is not None  # noqa: S101  (_refill_count checked it)
        with self.gate.fetching() as open_:
            if not open_:
                self.broker.settle(batch)
                return []
            _, got = self.broker.settle_then_fetch(
                batch, self.queue, self.consumer, want, self.limits(), cap=cap
            )
            self.held.add(got)
            return got

    def _deliver(self, got: list[Delivery], want: int) -> None:
        self.drained = len(got) < want
        for d in got:
            if self.refill is None:
                return  # stopping: they stay held and are handed back at the end
            try:
                self.refill.send_nowait(d)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                return
