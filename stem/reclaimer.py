"""The reclaimer actor: redeliver jobs whose lease expired, and promote due delayed jobs.

Every ``interval_s`` it pages through each queue's ready streams with ``XAUTOCLAIM``
(min idle = the app's lease): an entry idle that long belongs to a worker that died or
hung (live workers renew every lease/3), so its job goes back on its stream; a job
delivered ``max_deliveries`` times goes to the dead-letter queue with reason
``max-deliveries`` (a poison job stops looping). Each page is one Lua script, so any
number of reclaimers can run at once: an entry is taken back by exactly one of them.
It also promotes due delayed jobs (every 50 ms), so delays work with no worker running.
Errors talking to Redis are logged and retried on the next round; it never exits on them.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

import trio

from stem.errors import BrokerUnavailable
from stem.observe.heartbeat import touch_supervisor_heartbeat
from stem.observe.logs import configure_logging

if TYPE_CHECKING:
    from stem.app import Stem

log = logging.getLogger("stem.reclaimer")

PROMOTE_INTERVAL_S = 0.05


async def serve_reclaimer(
    app: Stem,
    *,
    queues: Sequence[str] | None = None,
    interval_s: float | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Reclaim and promote until cancelled; ``queues=None`` means every known queue."""
    broker = app.broker
    name = f"reclaimer/{socket.gethostname()}/{os.getpid()}"
    every_s = interval_s if interval_s is not None else max(0.05, min(app.lease_s / 2, 5.0))
    min_idle_ms = int(app.lease_s * 1000)

    async def names() -> Sequence[str]:
        return queues if queues is not None else await trio.to_thread.run_sync(broker.queues)

    async def reclaim_loop() -> None:
        while True:
            for queue in await names():
                stats = await trio.to_thread.run_sync(
                    lambda q=queue: broker.reclaim(  # type: ignore[misc]
                        q, name, min_idle_ms=min_idle_ms, max_deliveries=app.max_deliveries
                    )
                )
                if stats.requeued or stats.dead_lettered:
                    log.warning(
                        "%s: %d expired job(s) handed back, %d dead-lettered (max-deliveries)",
                        queue,
                        stats.requeued,
                        stats.dead_lettered,
                    )
            touch_supervisor_heartbeat()
            await trio.sleep(every_s)

    async def promote_loop() -> None:
        while True:
            for queue in await names():
                await trio.to_thread.run_sync(broker.promote_due, queue)
            await trio.sleep(PROMOTE_INTERVAL_S)

    async def resilient(loop: object) -> None:
        while True:
            try:
                await loop()  # type: ignore[operator]
            except BrokerUnavailable as exc:
                log.warning("reclaimer: %s (retrying in 1 s)", exc)
                await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(resilient, reclaim_loop)
        nursery.start_soon(resilient, promote_loop)
        task_status.started()


def run(app: Stem, *, queues: Sequence[str] | None = None, interval_s: float | None = None) -> int:
    """Run the reclaimer in this process until SIGTERM/SIGINT; return the exit code (0)."""
    configure_logging("reclaimer")

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: serve_reclaimer(app, queues=queues, interval_s=interval_s))
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    break
            nursery.cancel_scope.cancel()

    trio.run(main)
    return 0
