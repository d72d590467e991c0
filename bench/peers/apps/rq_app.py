"""RQ: ``rq worker --url URL`` (the default forking worker: one work horse per job).

Bulk: ``Queue.enqueue_many`` (one pipeline).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis
from rq import Queue

from bench.peers import job


class Producer:
    def __init__(self) -> None:
        self.queue = Queue(connection=Redis.from_url(job.redis_url()))

    def send(self, enqueued_at: float) -> None:
        self.queue.enqueue(job.run, enqueued_at)

    def send_many(self, n: int) -> None:
        self.queue.enqueue_many([Queue.prepare_data(job.run, (0.0,)) for _ in range(n)])


@contextmanager
def producer() -> Iterator[Producer]:
    yield Producer()
