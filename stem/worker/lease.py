"""The lease keeper: renews the lease of every job a worker holds, from its own OS thread.

Leases are renewed in place (``XCLAIM ... JUSTID`` to the same consumer, one call per
queue per interval for all held jobs), so a job that runs far longer than the lease is
never handed to another worker while this worker lives. The keeper runs in a plain
thread, not in the event loop: an async task that blocks the loop (``time.sleep``, a CPU
spin) cannot starve it.

The timing rule (see :class:`LeaseTiming`): renewals go every ``lease/4`` over their own
connection, whose every call fails after ``deadline = min(lease/6, 3 s)``; a failed
renewal drops that connection (it may be half-open) and is retried at once with a small
backoff (at most ``deadline/4``), not an interval later. So the last renewal before a
partition is at most ``interval`` old when it starts, and the first one after it lands
at most ``deadline + backoff`` after it ends: a partition shorter than
``lease - interval - 1.25 * deadline - margin`` costs no job its lease. Longer ones: the
reclaimer may redeliver, which is the at-least-once contract. ``stop()`` ends the thread
and closes the renewal connection.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stem.errors import BrokerUnavailable

if TYPE_CHECKING:
    from stem.broker import Delivery, LeaseRenewer, WorkerBroker

log = logging.getLogger("stem.worker.lease")

#: First retry delay after a failed renewal; it doubles up to ``deadline/4``.
RETRY_BASE_S = 0.05
#: Slack for round trips, thread scheduling and the reclaimer's own clock.
MARGIN_S = 0.5


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    """How often leases are renewed, how long one renewal may take, what that survives."""

    lease_s: float

    @property
    def interval_s(self) -> float:
        """Time between successful renewals."""
        return self.lease_s / 4

    @property
    def deadline_s(self) -> float:
        """Connect and socket timeout of one renewal call."""
        return min(self.lease_s / 6, 3.0)

    @property
    def max_backoff_s(self) -> float:
        """Longest wait before retrying a failed renewal."""
        return self.deadline_s / 4

    @property
    def survivable_partition_s(self) -> float:
        """The longest network partition that cannot cost a live worker a lease."""
        worst = self.interval_s + self.deadline_s + self.max_backoff_s + MARGIN_S
        return max(0.0, self.lease_s - worst)


Key = tuple[str, int, str]


class HeldJobs:
    """The deliveries a worker holds (fetched, not yet settled), shared across threads.

    A held delivery is *settling* from the moment its settle or hand-back is sent until
    ``remove``: Redis may already have acked it, so a renewal that finds it gone must not
    call that a lost lease.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[Key, Delivery] = {}
        self._settling: set[Key] = set()

    def add(self, deliveries: list[Delivery]) -> None:
        with self._lock:
            for d in deliveries:
                self._held[(d.queue, d.priority, d.entry_id)] = d

    def settling(self, deliveries: list[Delivery]) -> None:
        """Mark deliveries whose settle or hand-back is about to be sent."""
        with self._lock:
            # A list, not a generator: a generator is resumed (a call) once per delivery.
            self._settling.update([(d.queue, d.priority, d.entry_id) for d in deliveries])

    def remove(self, deliveries: list[Delivery]) -> None:
        with self._lock:
            for d in deliveries:
                key = (d.queue, d.priority, d.entry_id)
                self._held.pop(key, None)
                self._settling.discard(key)

    def holds(self, delivery: Delivery, *, settling: bool = True) -> bool:
        """Whether ``delivery`` is still held; with ``settling=False``, only if no
        settle of it is in flight either."""
        key = (delivery.queue, delivery.priority, delivery.entry_id)
        with self._lock:
            return key in self._held and (settling or key not in self._settling)

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self._held.values())

    def __len__(self) -> int:
        return len(self._held)


class LeaseKeeper:
    """Renews ``held`` in a daemon thread until ``stop()`` (timing: :class:`LeaseTiming`).

    ``lost`` counts real losses only: entries another consumer holds now, and entries
    acked while this worker still held them without having sent their settle (the
    reclaimer took them). Entries this worker's own settle acked are not counted.
    """

    def __init__(self, broker: WorkerBroker, consumer: str, held: HeldJobs, lease_s: float) -> None:
        self.timing = LeaseTiming(lease_s)
        self.broker: LeaseRenewer = broker.with_deadline(self.timing.deadline_s)
        self.consumer = consumer
        self.held = held
        self.lost = 0
        self.renewals = 0
        self.renewed_jobs = 0  # job leases renewed, over all renewals
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stem-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the thread (within one renewal deadline) and close its connection."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.broker.close()

    def _loop(self) -> None:
        wait_s = self.timing.interval_s
        failed_in_a_row = 0
        while not self._stop.wait(wait_s):
            try:
                self.renew_once()
            except Exception as exc:
                failed_in_a_row += 1
                self.failures += 1
                self.broker.drop_connections()  # never reuse a possibly half-open socket
                wait_s = min(RETRY_BASE_S * 2 ** (failed_in_a_row - 1), self.timing.max_backoff_s)
                if isinstance(exc, BrokerUnavailable):
                    log.warning("lease renewal failed, retrying in %.2f s: %s", wait_s, exc)
                else:
                    log.exception("lease renewal failed, retrying in %.2f s", wait_s)
            else:
                if failed_in_a_row:
                    log.info("lease renewal succeeded after %d failure(s)", failed_in_a_row)
                failed_in_a_row = 0
                wait_s = self.timing.interval_s

    def renew_once(self) -> None:
        """Renew every held job now (one broker call; it groups them by queue)."""
        held = self.held.snapshot()
        if not held:
            return
        renewal = self.broker.renew(self.consumer, held)
        self.renewals += 1
        self.renewed_jobs += len(held)
        # Settled or handed back since the snapshot: not held, so not lost. Gone with a
        # settle in flight: our own ack (the reply had not reached the loop yet).
        lost = [d for d in renewal.taken if self.held.holds(d)]
        lost += [d for d in renewal.gone if self.held.holds(d, settling=False)]
        self.lost += len(lost)
        for queue, n in sorted(Counter(d.queue for d in lost).items()):
            log.warning("%s: %d job lease(s) were lost (taken over after a stall)", queue, n)
