"""Cancelling running jobs that an operator revoked (``stem job revoke --terminate``).

The revocation is the job record's state (``revoked``, written by the broker); the
worker learns of it by polling: once a second, while it runs at least one job, one
round trip asks which of the running jobs are revoked (``WorkerBroker.revoked``). A
worker that runs nothing asks nothing, and fetching is untouched. Each revoked job's
cancel scope is cancelled: an async task stops at its next ``await``, a process-pool
child is killed and replaced, a thread job is abandoned (as at a hard time limit); the
runner then settles it as ``REVOKED`` (ack only). A failed poll is logged and retried
the next second; the loop never ends on an error (it is cancelled with the worker).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from stem.errors import BrokerUnavailable

if TYPE_CHECKING:
    from stem.broker import Delivery, WorkerBroker

log = logging.getLogger("stem.worker")

#: How often running jobs' states are looked at.
POLL_INTERVAL_S = 1.0

_Key = tuple[str, int, str]


class RunningJobs:
    """The jobs running now, each with the cancel scope that a revocation cancels."""

    def __init__(self) -> None:
        self._running: dict[_Key, tuple[Delivery, trio.CancelScope]] = {}

    def add(self, d: Delivery, scope: trio.CancelScope) -> None:
        """Job ``d`` runs now inside ``scope``: a revocation of ``d`` cancels that scope.

        The scope may hold many jobs one after the other (a runner keeps one until a
        revocation has used it: docs/performance.md, Change 17), so ``d`` must be
        ``discard``-ed before the runner waits for its next job."""
        self._running[(d.queue, d.priority, d.entry_id)] = (d, scope)

    def discard(self, d: Delivery) -> None:
        """Job ``d`` no longer runs."""
        self._running.pop((d.queue, d.priority, d.entry_id), None)

    def cancel(self, revoked: list[Delivery]) -> None:
        """Cancel the jobs of ``revoked`` that still run."""
        for d in revoked:
            held = self._running.get((d.queue, d.priority, d.entry_id))
            if held is not None:
                log.warning("job %s in %s was revoked: cancelling it", d.job_id, d.queue)
                held[1].cancel()

    async def poll_once(self, broker: WorkerBroker) -> None:
        """Ask the broker which running jobs are revoked, and cancel those."""
        running = [d for d, _ in self._running.values()]
        if not running:
            return
        try:
            revoked = await trio.to_thread.run_sync(broker.revoked, running)
        except BrokerUnavailable as exc:
            log.warning("looking for revoked jobs failed: %s", exc)
            return
        self.cancel(revoked)

    async def serve_polling(self, broker: WorkerBroker) -> None:
        """Poll every :data:`POLL_INTERVAL_S` until cancelled."""
        while True:
            await self.poll_once(broker)
            await trio.sleep(POLL_INTERVAL_S)
