"""The job every system runs, and the keys the harness reads (peer side: needs only redis).

Imported inside each peer's own environment, so it must not import ``stem`` or anything
outside the standard library and redis-py. The job does one blocking ``INCR`` on
``COUNTER`` (the harness polls it to count completions); a latency job (``enqueued_at``
> 0, the producer's ``time.time()`` just before enqueueing) pushes ``"enqueued done"``
onto ``LATENCIES`` in the same round trip.
"""

from __future__ import annotations

import os
import time

import redis

URL_ENV = "PEERS_REDIS_URL"
COUNTER = "peers:done"
LATENCIES = "peers:latency"

_client: redis.Redis | None = None


def redis_url() -> str:
    """The run's private Redis, as the harness hands it to every process."""
    return os.environ[URL_ENV]


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(redis_url())
    return _client


def run(enqueued_at: float) -> None:
    """The job: one blocking ``INCR`` (plus the completion time for latency jobs)."""
    if enqueued_at <= 0:
        _redis().incr(COUNTER)
        return
    with _redis().pipeline(transaction=False) as pipe:
        pipe.incr(COUNTER)
        pipe.rpush(LATENCIES, f"{enqueued_at!r} {time.time()!r}")
        pipe.execute()
