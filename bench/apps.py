"""The tasks benchmarks run (importable by worker processes as ``bench.apps:app``)."""

from __future__ import annotations

from stem import Stem

app = Stem()


@app.task(name="bench.noop_async")
async def noop_async() -> None:
    return None


@app.task(name="bench.noop_sync")
def noop_sync() -> None:
    return None
