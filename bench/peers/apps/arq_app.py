"""arq (async only: the job's blocking call runs on the event loop).

Worker: ``arq bench.peers.apps.arq_app.WorkerSettings`` (max_jobs 10, the default); one
process per command. No bulk enqueue API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings

from bench.peers import job

SETTINGS = RedisSettings.from_dsn(job.redis_url())


async def run(ctx: dict[str, Any], enqueued_at: float) -> None:
    job.run(enqueued_at)


class WorkerSettings:
    functions = [run]
    redis_settings = SETTINGS


class Producer:
    send_many = None

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def send(self, enqueued_at: float) -> None:
        await self.pool.enqueue_job("run", enqueued_at)


@asynccontextmanager
async def producer() -> AsyncIterator[Producer]:
    pool = await create_pool(SETTINGS)
    try:
        yield Producer(pool)
    finally:
        await pool.aclose()
