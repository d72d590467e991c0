"""The producer side of one system, run inside that system's environment (peer side).

    <env>/bin/python -m bench.peers.driver APP single N
    <env>/bin/python -m bench.peers.driver APP fill N        # bulk API if any, else single
    <env>/bin/python -m bench.peers.driver APP paced RATE SECONDS
    <env>/bin/python -m bench.peers.driver APP batches RATE N     # bulk, every 5 ms

``APP`` is a module of ``bench.peers.apps``. It defines ``producer()``, a context manager
(sync or async) giving an object with ``send(enqueued_at)`` (sync or async: one job) and
``send_many`` (one call enqueueing ``n`` jobs through the system's bulk API, or ``None``
when it has none). Prints one JSON object: the seconds the enqueues took, or how many
jobs were sent at the pace. Must not import ``stem`` (the peers' environments lack it).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import sys
import time
from contextlib import AsyncExitStack
from typing import Any

BATCH_EVERY_S = 0.005


async def _call(fn: Any, *args: Any) -> None:
    result = fn(*args)
    if inspect.isawaitable(result):
        await result


async def _single(producer: Any, n: int) -> dict[str, Any]:
    start = time.perf_counter()
    for _ in range(n):
        await _call(producer.send, 0.0)
    return {"seconds": time.perf_counter() - start, "bulk": False}


async def _fill(producer: Any, n: int) -> dict[str, Any]:
    if producer.send_many is None:
        return await _single(producer, n)
    start = time.perf_counter()
    await _call(producer.send_many, n)
    return {"seconds": time.perf_counter() - start, "bulk": True}


async def _batches(producer: Any, per_s: float, n: int) -> dict[str, Any]:
    """``n`` jobs at ``per_s`` a second, as one bulk enqueue (``fill``) every 5 ms (the
    last one partial), sleeping between: a steady arrival rate from a producer that
    takes no CPU while it waits."""
    each = max(1, round(per_s * BATCH_EVERY_S))
    next_at = time.perf_counter()
    sent = 0
    while sent < n:
        batch = min(each, n - sent)
        await _fill(producer, batch)
        sent += batch
        next_at += batch / per_s
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    return {"sent": sent}


async def _paced(producer: Any, per_s: float, seconds: float) -> dict[str, Any]:
    """``per_s`` jobs a second, each stamped with ``time.time()`` just before its enqueue."""
    interval = 1 / per_s
    next_at = time.perf_counter()
    sent = 0
    late_s = 0.0
    for _ in range(int(per_s * seconds)):
        while (now := time.perf_counter()) < next_at:
            await asyncio.sleep(0) if next_at - now < 0.002 else await asyncio.sleep(0.001)
        late_s = max(late_s, now - next_at)
        next_at += interval
        await _call(producer.send, time.time())
        sent += 1
    return {"sent": sent, "max_late_ms": late_s * 1000}


async def _run(app: str, mode: str, params: list[str]) -> dict[str, Any]:
    module = importlib.import_module(f"bench.peers.apps.{app}")
    async with AsyncExitStack() as stack:
        cm = module.producer()
        if hasattr(cm, "__aenter__"):
            producer = await stack.enter_async_context(cm)
        else:
            producer = stack.enter_context(cm)
        if mode == "single":
            return await _single(producer, int(params[0]))
        if mode == "fill":
            return await _fill(producer, int(params[0]))
        if mode == "batches":
            return await _batches(producer, float(params[0]), int(params[1]))
        if mode == "paced":
            return await _paced(producer, float(params[0]), float(params[1]))
    raise SystemExit(f"driver: unknown mode {mode!r} (single, fill, paced, batches)")


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        modes = "single|fill|paced|batches"
        raise SystemExit(f"usage: python -m bench.peers.driver APP {modes} ARGS...")
    print(json.dumps(asyncio.run(_run(argv[0], argv[1], argv[2:]))))


if __name__ == "__main__":
    main(sys.argv[1:])
