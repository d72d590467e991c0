"""Dramatiq with its Redis broker.

Worker: ``dramatiq bench.peers.apps.dramatiq_app --processes N`` (8 threads each, the
default). No bulk enqueue API.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.peers import job

broker = RedisBroker(url=job.redis_url())
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name="peers_job")
def run(enqueued_at: float) -> None:
    job.run(enqueued_at)


class Producer:
    send_many = None

    def send(self, enqueued_at: float) -> None:
        run.send(enqueued_at)


@contextmanager
def producer() -> Iterator[Producer]:
    yield Producer()
