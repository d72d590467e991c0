"""Huey with ``RedisHuey``.

Worker: ``huey_consumer bench.peers.apps.huey_app.huey`` (one worker thread, the
default); two processes: ``-k process -w 2``. No bulk enqueue API.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from huey import RedisHuey

from bench.peers import job

huey = RedisHuey("peers", url=job.redis_url())


@huey.task()
def run(enqueued_at: float) -> None:
    job.run(enqueued_at)


class Producer:
    send_many = None

    def send(self, enqueued_at: float) -> None:
        run(enqueued_at)


@contextmanager
def producer() -> Iterator[Producer]:
    yield Producer()
