"""taskiq with taskiq-redis's ``RedisStreamBroker`` (the README's broker; acknowledged).

Worker: ``taskiq worker bench.peers.apps.taskiq_app:broker --workers N``. A sync task runs
in the worker's thread pool. No bulk enqueue API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from taskiq_redis import RedisStreamBroker

from bench.peers import job

broker = RedisStreamBroker(url=job.redis_url())


@broker.task(task_name="peers.job")
def run(enqueued_at: float) -> None:
    job.run(enqueued_at)


class Producer:
    send_many = None

    async def send(self, enqueued_at: float) -> None:
        await run.kiq(enqueued_at)


@asynccontextmanager
async def producer() -> AsyncIterator[Producer]:
    await broker.startup()
    try:
        yield Producer()
    finally:
        await broker.shutdown()
