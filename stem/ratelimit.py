"""The rate limiter actor (``stem ratelimit``): the part of limits that belongs to no worker.

Workers decide at fetch time, inside the fetch script: a job whose limits allow it takes
its token or slot with the delivery; one they refuse is parked in its limit instance's
wait set (state ``throttled``), holding no worker slot and costing no delivery or attempt.
Every ``interval_s`` (50 ms by default) this actor runs one round per queue, one Lua call
each (``limits.lua``):

* takes back concurrency slots and locks whose holding delivery is over (its stream
  entry is gone: settled, or reclaimed after the lease by the reclaimer, which also gives
  the slot back itself);
* releases waiting jobs whose every limit allows them now, round-robin across limit
  instances (keys) and FIFO within one, taking their tokens and slots as it puts them
  back on their ready stream, so the fetch that delivers them takes nothing twice;
* publishes counters in the queue's stats hash (throttled, released, slots freed, wait
  time), which ``stem limit list`` shows. Idle token buckets expire on their own.

Any number of limiters may run: each round is one atomic script. If none runs, nothing
is lost and no limit is exceeded: throttled jobs wait. It reads the definitions (code +
``stem limit set``) every round-second like the workers. Errors talking to Redis are
logged and retried; it never exits on them.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

import trio

from stem.errors import BrokerUnavailable
from stem.limits import effective
from stem.observe.heartbeat import touch_supervisor_heartbeat
from stem.observe.presence import serve_presence
from stem.runtime import run_actor

if TYPE_CHECKING:
    from stem.app import Stem
    from stem.broker import LimiterBroker, LimitSpec

log = logging.getLogger("stem.ratelimit")

#: How often definitions and the queue list are re-read.
REFRESH_S = 0.5


class RateLimiter:
    """One limiter's rounds; ``serve_ratelimiter`` runs them on a timer."""

    def __init__(self, app: Stem, queues: Sequence[str] | None) -> None:
        self.app = app
        self.broker: LimiterBroker = app.broker
        self.queues = queues
        self.code = app.limit_specs()
        self.current: tuple[LimitSpec, ...] = effective(self.code, {})
        self._known: Sequence[str] = queues or ()
        self.name = f"ratelimit/{socket.gethostname()}/{os.getpid()}"

    def refresh(self) -> None:
        """Re-read the run-time definitions and the queue list (blocking)."""
        self.current = effective(self.code, self.broker.limit_overrides())
        self._known = self.queues if self.queues is not None else self.broker.queues()

    def round(self, idle_s: float) -> float:
        """One round over every queue (blocking); return how long to wait before the
        next: 0 after a round that released jobs, else until the next token is due (a
        rate limit's starts are spread exactly), at most ``idle_s``."""
        released, wait_s = 0, idle_s
        for queue in self._known:
            done = self.broker.limit_round(queue, self.current)
            released += done.released
            if done.next_token_ms >= 0:
                wait_s = min(wait_s, done.next_token_ms / 1000)
            if done.slots_freed:
                log.info(
                    "%s: took back %d slot(s) of deliveries that are over", queue, done.slots_freed
                )
        return 0.0 if released else wait_s


async def serve_ratelimiter(
    app: Stem,
    *,
    queues: Sequence[str] | None = None,
    interval_s: float = 0.05,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run limiter rounds until cancelled; ``queues=None`` means every known queue."""
    limiter = RateLimiter(app, queues)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_presence, limiter.broker, "ratelimiter", limiter.name)
        task_status.started()
        await _limit_loop(limiter, interval_s)


async def _limit_loop(limiter: RateLimiter, interval_s: float) -> None:
    refreshed_at: float | None = None
    while True:
        try:
            if refreshed_at is None or trio.current_time() - refreshed_at >= REFRESH_S:
                await trio.to_thread.run_sync(limiter.refresh)
                refreshed_at = trio.current_time()
            wait_s = await trio.to_thread.run_sync(limiter.round, interval_s)
        except BrokerUnavailable as exc:
            log.warning("ratelimit: %s (retrying in 1 s)", exc)
            touch_supervisor_heartbeat()
            await trio.sleep(1)
            continue
        touch_supervisor_heartbeat()
        await trio.sleep(wait_s)  # 0 after a busy round: checkpoint and go on


def run(app: Stem, *, queues: Sequence[str] | None = None, interval_s: float = 0.05) -> int:
    """Run the limiter in this process until SIGTERM/SIGINT; return the exit code (0)."""

    async def serve(nursery: trio.Nursery) -> None:
        await serve_ratelimiter(app, queues=queues, interval_s=interval_s)

    return run_actor("ratelimit", app, serve)
