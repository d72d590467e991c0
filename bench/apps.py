"""The tasks benchmarks run (importable by worker processes as ``bench.apps:app``)."""

from __future__ import annotations

import time

from stem import Stem

app = Stem()


@app.task(name="bench.noop_async")
async def noop_async() -> None:
    return None


@app.task(name="bench.stamp")
async def stamp() -> float:
    """The worker's clock when the job runs: latency to the microsecond (a record's
    ``end_ms`` is whole milliseconds, too coarse for sub-millisecond latencies)."""
    return time.time()


@app.task(name="bench.noop_sync")
def noop_sync() -> None:
    return None


@app.task(name="bench.noop_unthrottled", rate_limit="1000000/s")
async def noop_unthrottled() -> None:
    """Under a limit that never throttles: what taking a token costs."""
    return None


@app.task(name="bench.rated", rate_limit="100/s")
async def rated() -> None:
    """Under 100/s: the achieved rate against the configured one."""
    return None


@app.task(name="bench.rated20", rate_limit="20/s")
async def rated20() -> None:
    """Under 20/s (the issue's acceptance rate): the achieved rate against it."""
    return None


@app.task(name="bench.incr", pool="threads")
def incr() -> None:
    """The peers benchmark's job (bench/peers/job.py): one blocking ``INCR`` on the Redis
    at ``$PEERS_REDIS_URL``."""
    from bench.peers import job

    job.run(0.0)
