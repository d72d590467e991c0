"""The cost of observability on the worker's drain rate, as ratios to a baseline.

    .venv/bin/python -m bench.observe [--jobs 5000] [--runs 3]

One in-process worker drains ``--jobs`` no-op async jobs (enqueued first) in three
setups, interleaved run by run, median of ``--runs`` (the machine is noisy):

* ``quiet``: logs at WARNING (no job lines), no tracer provider: the baseline;
* ``logs``: a job-event line per start and per success at INFO (to /dev/null);
* ``logs+traces``: that, plus the SDK tracer provider with a batch processor and an
  exporter that drops every span (so the cost is stem's spans, not an exporter's I/O).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

import trio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench.common import private_redis, table
from stem import Stem
from stem.observe.logs import configure_logging
from stem.observe.tracing import Tracing
from stem.worker import WorkerOptions, serve_worker

SETUPS = ("quiet", "logs", "logs+traces")


class DropSpans(SpanExporter):
    """Accepts every span and keeps none."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def drain(url: str, setup: str, jobs: int, run: int) -> float:
    """Jobs per second for one drain in ``setup``."""
    provider: Any = None
    if setup == "logs+traces":
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(DropSpans()))
    with open(os.devnull, "w") as null:
        configure_logging("worker", "WARNING" if setup == "quiet" else "INFO", stream=null)
        app = Stem(url, namespace=f"obs{run}{SETUPS.index(setup)}", middleware=[Tracing(provider)])
        app.task(name="bench.noop_async")(_noop)
        app.enqueue_many("bench.noop_async", [() for _ in range(jobs)])
        options = WorkerOptions(concurrency=50, prefetch=500, burst=True)
        started = time.perf_counter()
        trio.run(serve_worker, app, options)
        elapsed = time.perf_counter() - started
        app.close()
    if provider is not None:
        provider.shutdown()
    logging.getLogger().handlers.clear()
    return jobs / elapsed


async def _noop() -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {s: [] for s in SETUPS}
    with private_redis() as redis:
        for run in range(args.runs):
            for setup in SETUPS:
                rates[setup].append(drain(redis.url, setup, args.jobs, run))
    base = statistics.median(rates["quiet"])
    rows = [
        [s, f"{statistics.median(r):,.0f}", f"{statistics.median(r) / base:.2f}"]
        for s, r in rates.items()
    ]
    print(table(rows, ["setup", "jobs/s (median)", "vs quiet"]))


if __name__ == "__main__":
    main()
