"""Redis time per job of the worker's scripts, by batch size (docs/performance.md, Change 11).

    .venv/bin/python -m bench.scripts_cost [--jobs 4000]

For batches of 1, 10 and 100 jobs, through ``RedisBroker`` against a private
``redis-server``: ``fetch.lua`` alone, ``complete.lua`` alone, and a settle and the next
fetch in one pipeline (what a busy worker sends). The figure is the server's own time
(``INFO commandstats``, ``EVALSHA`` microseconds) divided by the jobs, so the client's
speed and the machine's load move it little; compare two commits in one run.
"""

from __future__ import annotations

import argparse
from typing import Any

import redis

from bench.common import private_redis
from stem import Stem
from stem.broker import Settlement
from stem.outcome import Verdict


def _evalsha_us(client: Any) -> float:
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return float(stats.get("usec", 0))


def measure(url: str, batch: int, jobs: int) -> tuple[float, float, float]:
    """(fetch, complete, settle+fetch) server microseconds per job."""
    client: Any = redis.Redis.from_url(url)
    app = Stem(url, namespace=f"b{batch}")
    broker = app.broker
    try:
        app.enqueue_many("t", [(i,) for i in range(jobs)])
        client.config_resetstat()
        got: list[Any] = []
        while len(got) < jobs:
            got += broker.fetch("default", "c1", batch)
        fetch_us = _evalsha_us(client) / jobs
        client.config_resetstat()
        for i in range(0, jobs, batch):
            broker.settle([Settlement(d, Verdict.COMPLETE, "null") for d in got[i : i + batch]])
        complete_us = _evalsha_us(client) / jobs
        app.enqueue_many("t", [(i,) for i in range(jobs)])
        client.config_resetstat()
        held = broker.fetch("default", "c1", batch)
        while held:
            done = [Settlement(d, Verdict.COMPLETE, "null") for d in held]
            held = broker.settle_then_fetch(done, "default", "c1", batch)[1]
        both_us = _evalsha_us(client) / jobs
    finally:
        app.close()
        client.close()
    return fetch_us, complete_us, both_us


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=4000)
    args = parser.parse_args()
    with private_redis() as server:
        print(f"redis: {server.binary}; {args.jobs:,} jobs per case; server us per job")
        for batch in (1, 10, 100):
            fetch_us, complete_us, both_us = measure(server.url, batch, args.jobs)
            print(
                f"batch {batch:3d}: fetch {fetch_us:5.1f}  complete {complete_us:5.1f}  "
                f"settle+fetch {both_us:5.1f}"
            )


if __name__ == "__main__":
    main()
