"""The ceiling: a minimal hand-written Redis Streams worker, and bare ``XADD`` enqueues.

    python -m bench.peers.apps.minimal        # the worker (reads PEERS_REDIS_URL)

The worker reads ``XREADGROUP COUNT 100 BLOCK 1000``, runs the job for each entry, then
acknowledges the batch with one ``XACK``. No envelope, no job record, no retries: the most
a consumer of this pattern can do here. Single enqueue is one ``XADD`` round trip each;
bulk is all the ``XADD``s in one pipeline.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from bench.peers import job

STREAM = "peers:minimal"
GROUP = "g"
BATCH = 100


class Producer:
    def __init__(self) -> None:
        self.client: Any = redis.Redis.from_url(job.redis_url())  # untyped replies

    def send(self, enqueued_at: float) -> None:
        self.client.xadd(STREAM, {"t": repr(enqueued_at)})

    def send_many(self, n: int) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for _ in range(n):
                pipe.xadd(STREAM, {"t": "0.0"})
            pipe.execute()


@contextmanager
def producer() -> Iterator[Producer]:
    p = Producer()
    try:
        yield p
    finally:
        p.client.close()


def serve() -> None:
    """Read, run, acknowledge, until SIGTERM."""
    client: Any = redis.Redis.from_url(job.redis_url())
    try:
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    consumer = f"c{os.getpid()}"
    while not stopping:
        reply = client.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=BATCH, block=1000)
        if not reply:
            continue
        entries = reply[0][1]
        for _, fields in entries:
            job.run(float(fields[b"t"]))
        client.xack(STREAM, GROUP, *[entry_id for entry_id, _ in entries])


if __name__ == "__main__":
    serve()
