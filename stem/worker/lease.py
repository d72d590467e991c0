"""The lease keeper: renews the lease of every job a worker holds, from its own OS thread.

Leases are renewed in place (``XCLAIM ... JUSTID`` to the same consumer, one call per
queue per interval for all held jobs), so a job that runs far longer than the lease is
never handed to another worker while this worker lives. The keeper runs in a plain
thread, not in the event loop: an async task that blocks the loop (``time.sleep``, a CPU
spin) cannot starve it. ``stop()`` ends the thread; errors are logged and retried on the
next interval (if Redis is gone longer than the lease, the reclaimer may redeliver: that
is the at-least-once contract).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import TYPE_CHECKING

from stem.errors import BrokerUnavailable

if TYPE_CHECKING:
    from stem.broker import Delivery, RedisBroker

log = logging.getLogger("stem.worker.lease")


class HeldJobs:
    """The deliveries a worker holds (fetched, not yet settled), shared across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[str, int, str], Delivery] = {}

    def add(self, deliveries: list[Delivery]) -> None:
        with self._lock:
            for d in deliveries:
                self._held[(d.queue, d.priority, d.entry_id)] = d

    def remove(self, deliveries: list[Delivery]) -> None:
        with self._lock:
            for d in deliveries:
                self._held.pop((d.queue, d.priority, d.entry_id), None)

    def holds(self, queue: str, entry_id: str) -> bool:
        """Whether an entry of ``queue`` is still held (any priority)."""
        with self._lock:
            return any(k[0] == queue and k[2] == entry_id for k in self._held)

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self._held.values())

    def __len__(self) -> int:
        return len(self._held)


class LeaseKeeper:
    """Renews ``held`` every ``interval_s`` in a daemon thread until ``stop()``."""

    def __init__(
        self, broker: RedisBroker, consumer: str, held: HeldJobs, interval_s: float
    ) -> None:
        self.broker = broker
        self.consumer = consumer
        self.held = held
        self.interval_s = interval_s
        self.lost = 0
        self.renewals = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stem-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.renew_once()
            except BrokerUnavailable as exc:
                log.warning("lease renewal failed, will retry: %s", exc)
            except Exception:
                log.exception("lease renewal failed, will retry")

    def renew_once(self) -> None:
        """Renew every held job now (one call per queue)."""
        by_queue: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
        for d in self.held.snapshot():
            by_queue[d.queue][d.priority].append(d.entry_id)
        for queue, held in by_queue.items():
            lost = self.broker.renew(queue, self.consumer, held)
            self.renewals += 1
            # An entry settled between the snapshot and the renewal is acked, not lost.
            lost = [e for e in lost if self.held.holds(queue, e)]
            if lost:
                self.lost += len(lost)
                log.warning(
                    "%s: %d job lease(s) were lost (taken over after a stall)", queue, len(lost)
                )
