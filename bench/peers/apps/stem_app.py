"""stem, from the repository's ``.venv``: the job as a sync task in the thread pool.

The job makes a blocking Redis call, and stem's task guide says sync code that mostly
waits on I/O goes to ``pool="threads"`` (blocking calls must not run on the trio loop).
Worker: ``python -m stem --redis-url URL --namespace peers --app
bench.peers.apps.stem_app:app worker`` at its defaults (concurrency 10, prefetch auto).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bench.peers import job
from stem import Stem

NAMESPACE = "peers"
app = Stem()


@app.task(name="peers.job", pool="threads")
def run(enqueued_at: float) -> None:
    job.run(enqueued_at)


class Producer:
    def __init__(self) -> None:
        app.connect(job.redis_url(), namespace=NAMESPACE)
        # Open the broker now (its module, the scripts, a connection), as a producer that
        # has run for a while has: stem opens it on first use, and that one-time ~40 ms
        # would otherwise land in the first timed call (a 1,000-job bulk enqueue takes
        # ~15 ms warm). No job is sent.
        app.broker.ping()

    def send(self, enqueued_at: float) -> None:
        app.enqueue("peers.job", (enqueued_at,))

    def send_many(self, n: int) -> None:
        app.enqueue_many("peers.job", [(0.0,) for _ in range(n)])


@contextmanager
def producer() -> Iterator[Producer]:
    p = Producer()
    try:
        yield p
    finally:
        app.close()
