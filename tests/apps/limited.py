"""Tasks under limits, for tests/limits (importable as tests.apps.limited:app).

Each task returns its own start and end (``time.time()``), the record the acceptance
tests check overlap and rates against.
"""

from __future__ import annotations

import time

import trio

from stem import Stem

app = Stem(lease_s=1.0)
app.limit("shared", rate="20/s")


@app.task(concurrency_limit=2)
async def export(i: int) -> list[float]:
    start = time.time()
    await trio.sleep(0.3)
    return [start, time.time()]


@app.task(lock="k:{x}")
async def locked(x: str, i: int, seconds: float = 0.1) -> list[float]:
    start = time.time()
    await trio.sleep(seconds)
    return [start, time.time()]


@app.task(rate_limit="20/s")
async def rated(i: int) -> float:
    return time.time()


@app.task(rate_limit="5/s", limit_key="{tenant}", limits=["shared"])
async def notify(tenant: str, i: int) -> float:
    return time.time()


@app.task
async def free(i: int) -> int:
    return i
