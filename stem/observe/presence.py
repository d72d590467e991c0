"""Presence of the actors that are not workers: reclaimer, beat and rate limiter.

Workers announce themselves with their own heartbeat (it also carries their commands).
The other actors run :func:`serve_presence` beside their loop: every ``interval_s`` it
writes a small record (host, pid, start time, and the actor's own counters) that expires
``ttl_s`` after the last write. So ``stem observe``, ``stem limit list`` and the
Prometheus endpoint (``stem_actors_alive``) can say that a kind of actor is missing,
which is how an operator learns that delayed jobs are not promoted, expired leases are
not taken back or throttled jobs are not released.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import trio

from stem.broker import Presence
from stem.errors import BrokerUnavailable

log = logging.getLogger("stem.observe.presence")

#: The kinds of actor that announce themselves here (workers have their own record).
KINDS: Final = ("reclaimer", "beat", "ratelimiter")
PRESENCE_INTERVAL_S: Final = 2.0
#: A record outlives five missed beats, as a worker's heartbeat does.
PRESENCE_TTL_S: Final = 10.0


async def serve_presence(
    broker: Presence,
    kind: str,
    actor_id: str,
    stats: Callable[[], Mapping[str, Any]] | None = None,
    *,
    interval_s: float = PRESENCE_INTERVAL_S,
    ttl_s: float = PRESENCE_TTL_S,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Announce actor ``actor_id`` of ``kind`` every ``interval_s`` until cancelled,
    then remove its record. Redis being away costs beats, never the actor."""
    # "host" is the machine, as in a worker's heartbeat (a pid means something only there).
    base = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_ms": time.time_ns() // 1_000_000,
    }
    task_status.started()
    try:
        while True:
            record = {**base, **(stats() if stats is not None else {})}
            try:
                await trio.to_thread.run_sync(broker.actor_heartbeat, kind, actor_id, record, ttl_s)
            except BrokerUnavailable as exc:  # the actor's own loop reports the outage
                log.debug("%s %s: heartbeat not written: %s", kind, actor_id, exc)
            await trio.sleep(interval_s)
    finally:
        # If Redis is away, the record expires on its own after ttl_s.
        with trio.move_on_after(2, shield=True), contextlib.suppress(BrokerUnavailable):
            await trio.to_thread.run_sync(
                broker.forget_actor, kind, actor_id, abandon_on_cancel=True
            )
