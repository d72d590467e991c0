"""Celery (Redis broker, no result backend: Celery's default).

Worker: ``celery -A bench.peers.apps.celery_app worker --concurrency N`` (prefork pool).
No bulk enqueue API (a ``group`` publishes its messages one by one).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery

from bench.peers import job

app = Celery("peers", broker=job.redis_url())


@app.task(name="peers.job")
def run(enqueued_at: float) -> None:
    job.run(enqueued_at)


class Producer:
    send_many = None

    def send(self, enqueued_at: float) -> None:
        run.delay(enqueued_at)


@contextmanager
def producer() -> Iterator[Producer]:
    yield Producer()
