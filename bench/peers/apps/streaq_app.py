"""streaQ (Redis Streams on coredis). A sync task runs in the worker's threads.

Worker: ``streaq run bench.peers.apps.streaq_app:worker --workers N`` (concurrency 16, the
default). Bulk: ``Worker.enqueue_many`` (one pipeline).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from streaq import Worker

from bench.peers import job

worker = Worker(redis_url=job.redis_url())


@worker.task
def run(enqueued_at: float) -> None:
    job.run(enqueued_at)


class Producer:
    async def send(self, enqueued_at: float) -> None:
        await run.enqueue(enqueued_at)

    async def send_many(self, n: int) -> None:
        await worker.enqueue_many([run.enqueue(0.0) for _ in range(n)])


@asynccontextmanager
async def producer() -> AsyncIterator[Producer]:
    async with worker:
        yield Producer()
