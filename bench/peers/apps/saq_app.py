"""SAQ (async only: the job's blocking call runs on the event loop).

Worker: ``saq bench.peers.apps.saq_app.settings --workers N`` (concurrency 10, the
default). No bulk enqueue API (``Queue.map`` enqueues and then waits for the results).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from saq import Queue

from bench.peers import job

queue = Queue.from_url(job.redis_url())


async def run(ctx: Any, *, enqueued_at: float) -> None:
    job.run(enqueued_at)


settings = {"queue": queue, "functions": [run]}


class Producer:
    send_many = None

    async def send(self, enqueued_at: float) -> None:
        await queue.enqueue("run", enqueued_at=enqueued_at)


@asynccontextmanager
async def producer() -> AsyncIterator[Producer]:
    await queue.connect()
    try:
        yield Producer()
    finally:
        await queue.disconnect()
