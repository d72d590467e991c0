"""The reclaimer actor: redeliver jobs whose lease expired, and promote due delayed jobs.

Every ``interval_s`` it pages through each queue's ready streams with ``XAUTOCLAIM``
(min idle = the app's lease): an entry idle that long belongs to a worker that died or
hung (live workers renew every lease/4), so its job goes back on its stream; a job
delivered ``max_deliveries`` times goes to the dead-letter queue with reason
``max-deliveries`` (a poison job stops looping). Each page is one Lua script, so any
number of reclaimers can run at once: an entry is taken back by exactly one of them.
It also promotes due delayed jobs (every 50 ms), so delays work with no worker running,
and every ``PRUNE_EVERY_S`` deletes consumers that hold nothing and have been idle longer
than ``max(10 x lease, 1 hour)`` (left by crashed or SIGKILLed actors; clean stops remove
their own). On stop it removes its own consumer. Errors talking to Redis are logged and
retried on the next round; it never exits on them.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import trio

from stem.delays import promote_round
from stem.errors import BrokerUnavailable
from stem.observe.heartbeat import touch_supervisor_heartbeat
from stem.observe.metrics import Counter
from stem.observe.presence import serve_presence
from stem.runtime import run_actor

if TYPE_CHECKING:
    from stem.app import Stem
    from stem.broker import ReclaimerBroker

log = logging.getLogger("stem.reclaimer")

PRUNE_EVERY_S = 60.0
#: A consumer idle this long (and holding nothing) is pruned, whatever the lease.
MIN_CONSUMER_IDLE_S = 3600.0


class Reclaimer:
    """One reclaimer's rounds; ``serve_reclaimer`` runs them on timers."""

    def __init__(self, app: Stem, queues: Sequence[str] | None) -> None:
        self.app = app
        self.broker: ReclaimerBroker = app.broker
        self.queues = queues
        self.name = f"reclaimer/{socket.gethostname()}/{os.getpid()}"
        #: Consumers idle longer than this with nothing pending are deleted.
        self.consumer_idle_s = max(10 * app.lease_s, MIN_CONSUMER_IDLE_S)
        self.reclaimed = Counter(
            "stem.jobs.reclaimed", "{job}", "Jobs taken back after their lease expired."
        )

    def queue_names(self) -> Sequence[str]:
        """The configured queues, or every known queue."""
        return self.queues if self.queues is not None else self.broker.queues()

    def reclaim_round(self) -> None:
        """Take back every expired lease in every queue (blocking; run in a thread)."""
        for queue in self.queue_names():
            stats = self.broker.reclaim(
                queue,
                self.name,
                min_idle_ms=int(self.app.lease_s * 1000),
                max_deliveries=self.app.max_deliveries,
            )
            for job in stats.jobs:
                where = {"messaging.destination.name": queue, "stem.outcome": job.outcome}
                self.reclaimed.add(1, where)
                log.warning(
                    "reclaimed from %s (lease expired): %s",
                    job.consumer or "an unknown consumer",
                    "handed back"
                    if job.outcome == "requeued"
                    else "dead-lettered (max-deliveries)",
                    extra={"job_id": job.job_id, "task": job.task or "-", "queue": queue},
                )
            if stats.requeued or stats.dead_lettered:
                log.warning(
                    "%s: %d expired job(s) handed back, %d dead-lettered (max-deliveries)",
                    queue,
                    stats.requeued,
                    stats.dead_lettered,
                )

    def prune_round(self) -> None:
        """Delete idle consumers that hold nothing, in every queue (blocking)."""
        for queue in self.queue_names():
            n = self.broker.prune_consumers(queue, int(self.consumer_idle_s * 1000))
            if n:
                log.info("%s: removed %d idle consumer(s) that held nothing", queue, n)

    def forget_self(self) -> None:
        """Remove this reclaimer's own consumer from every queue (on stop)."""
        for queue in self.queue_names():
            self.broker.forget_consumer(queue, self.name)

    def promote_round(self) -> float:
        """Promote due delayed jobs; return seconds until the next one is due (capped)."""
        return promote_round(self.broker, self.queue_names())


async def serve_reclaimer(
    app: Stem,
    *,
    queues: Sequence[str] | None = None,
    interval_s: float | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Reclaim and promote until cancelled; ``queues=None`` means every known queue."""
    reclaimer = Reclaimer(app, queues)
    every_s = interval_s if interval_s is not None else max(0.05, min(app.lease_s / 2, 5.0))

    async def reclaim_loop() -> None:
        pruned_at: float | None = None
        while True:
            await trio.to_thread.run_sync(reclaimer.reclaim_round)
            if pruned_at is None or trio.current_time() - pruned_at >= PRUNE_EVERY_S:
                await trio.to_thread.run_sync(reclaimer.prune_round)
                pruned_at = trio.current_time()
            touch_supervisor_heartbeat()
            await trio.sleep(every_s)

    async def promote_loop() -> None:
        while True:
            await trio.sleep(await trio.to_thread.run_sync(reclaimer.promote_round))

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_resilient, reclaim_loop)
            nursery.start_soon(_resilient, promote_loop)
            nursery.start_soon(serve_presence, reclaimer.broker, "reclaimer", reclaimer.name)
            task_status.started()
    finally:
        with trio.move_on_after(5, shield=True):
            try:
                await trio.to_thread.run_sync(reclaimer.forget_self, abandon_on_cancel=True)
            except BrokerUnavailable as exc:  # an idle-consumer prune removes it later
                log.warning("reclaimer: could not remove its consumer: %s", exc)


async def _resilient(loop: Callable[[], Awaitable[None]]) -> None:
    while True:
        try:
            await loop()
        except BrokerUnavailable as exc:
            log.warning("reclaimer: %s (retrying in 1 s)", exc)
            touch_supervisor_heartbeat()  # alive and retrying: not a hung process
            await trio.sleep(1)


def run(app: Stem, *, queues: Sequence[str] | None = None, interval_s: float | None = None) -> int:
    """Run the reclaimer in this process until SIGTERM/SIGINT; return the exit code (0)."""

    async def serve(nursery: trio.Nursery) -> None:
        await serve_reclaimer(app, queues=queues, interval_s=interval_s)

    details = {"queues": queues or "all", "interval_s": interval_s or "auto"}
    return run_actor("reclaimer", app, serve, details=details)
