"""The cost of observability on the worker's drain rate, as ratios to a baseline.

    .venv/bin/python -m bench.observe [--jobs 5000] [--runs 3] [--job noop|incr] [--cpu auto|off]

One in-process worker drains ``--jobs`` jobs (enqueued first) in each setup, interleaved
run by run, median of ``--runs`` (the machine is noisy). ``--job noop`` (the default) is
an async task that does nothing: the worst case, every microsecond of overhead shows;
``--job incr`` is the peers' job of bench/peers (a sync task doing one blocking Redis
``INCR``, on the thread pool): the cheapest job that does any I/O. The setups:

* ``bare``: logs at WARNING, no tracer or meter provider, and without the always-on
  ``JobStats`` middleware (the heartbeat's per-task histograms): what stem costs with
  no observability at all;
* ``quiet``: the default with nothing configured (``JobStats`` on, tracing and meters
  off): the baseline of the ratios;
* ``logs``: a job-event line per start and per success at INFO (to /dev/null);
* ``traces``: logs at WARNING, the SDK tracer provider with a batch processor and an
  exporter that drops every span (the cost is stem's spans, not an exporter's I/O);
* ``traces+metrics``: that, plus the meter provider ``OTEL_METRICS_EXPORTER`` installs:
  one push reader (``stem.observe.aggregated.push_reader``) with an exporter that drops
  everything and is never collected during the drain, so the job histograms are stem's
  own aggregation (the cost is recording, not exporting);
* ``traces+sdk-metrics``: the same with the SDK's in-memory reader instead, which keeps
  the SDK's histograms (a measurement per job on each; how every job was metered before
  stem aggregated its own).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from typing import Any

import redis
import trio
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench.common import private_redis, table
from stem import Stem
from stem.middleware.base import Middleware
from stem.observe.aggregated import push_reader
from stem.observe.logs import configure_logging
from stem.observe.metrics import JobStats, Meters, aggregates_job_histograms
from stem.observe.metrics import meter_provider as sdk_meter_provider
from stem.observe.tracing import Tracing
from stem.worker import WorkerOptions, serve_worker
from stem.worker.cpu import parse_cpu, pin_worker

SETUPS = ("bare", "quiet", "logs", "traces", "traces+metrics", "traces+sdk-metrics")


class DropSpans(SpanExporter):
    """Accepts every span and keeps none."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class DropMetrics(MetricExporter):
    """Accepts every export and keeps none."""

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 0, **_: Any
    ) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 0) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 0, **_: Any) -> None:
        return None


def drain(url: str, setup: str, jobs: int, run: int, job: str = "noop") -> tuple[float, float]:
    """Jobs per wall-clock second and per CPU second of this process (all its threads;
    Redis runs elsewhere) for one drain in ``setup``. The CPU rate is the steadier one
    on a shared machine: other processes' load stretches wall time, not our CPU time."""
    provider: Any = None
    meter_provider: Any = None
    if setup.startswith("traces"):
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(DropSpans()))
    if setup == "traces+metrics":
        meter_provider = sdk_meter_provider([push_reader(DropMetrics())])  # stem's defaults
        if not aggregates_job_histograms(meter_provider):
            raise SystemExit("bench.observe: the push reader did not get stem's job histograms")
    if setup == "traces+sdk-metrics":
        meter_provider = sdk_meter_provider([InMemoryMetricReader()])
    middleware = [Tracing(provider), Meters(meter_provider)]
    with open(os.devnull, "w") as null, _without_job_stats(setup == "bare"):
        configure_logging("worker", "INFO" if setup == "logs" else "WARNING", stream=null)
        app = Stem(url, namespace=f"obs{run}{SETUPS.index(setup)}", middleware=middleware)
        if job == "noop":
            app.task(name="bench.job")(_noop)
            options = WorkerOptions(concurrency=50, prefetch=500, burst=True)
        else:
            client = redis.Redis.from_url(url)
            app.task(name="bench.job", pool="threads")(lambda: client.incr("bench:observe"))
            options = WorkerOptions(concurrency=10, burst=True)  # the defaults
        app.enqueue_many("bench.job", [() for _ in range(jobs)])
        started, cpu = time.perf_counter(), time.process_time()
        trio.run(serve_worker, app, options)
        elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        app.close()
    for p in (provider, meter_provider):
        if p is not None:
            p.shutdown()
    logging.getLogger().handlers.clear()
    return jobs / elapsed, jobs / cpu_s


@contextlib.contextmanager
def _without_job_stats(off: bool) -> Iterator[None]:
    """Run the worker without the ``JobStats`` middleware (its hooks made no-ops)."""
    if not off:
        yield
        return
    hooks = ("before_process", "after_process", "on_retry", "on_dead_letter")
    saved = {name: getattr(JobStats, name) for name in hooks}
    for name in hooks:
        setattr(JobStats, name, getattr(Middleware, name))  # the executor skips base no-ops
    try:
        yield
    finally:
        for name, hook in saved.items():
            setattr(JobStats, name, hook)


async def _noop() -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--job", choices=("noop", "incr"), default="noop")
    parser.add_argument(
        "--cpu", default="auto", help="pin this process as `stem worker --cpu` does (auto, off)"
    )
    args = parser.parse_args()
    wall: dict[str, list[float]] = {s: [] for s in SETUPS}
    cpu: dict[str, list[float]] = {s: [] for s in SETUPS}
    gc.freeze()  # as every actor does once started (stem.runtime)
    with private_redis() as server:
        placed = pin_worker(parse_cpu(args.cpu))  # after Redis started: it stays unpinned
        for run in range(args.runs):
            for setup in SETUPS:
                per_s, per_cpu_s = drain(server.url, setup, args.jobs, run, args.job)
                wall[setup].append(per_s)
                cpu[setup].append(per_cpu_s)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"job: {args.job}; cpu: {placed}; load average: {load}")
    base, base_cpu = statistics.median(wall["quiet"]), statistics.median(cpu["quiet"])
    rows = []
    for s in SETUPS:
        w, c = statistics.median(wall[s]), statistics.median(cpu[s])
        rows.append([s, f"{w:,.0f}", f"{w / base:.2f}", f"{c:,.0f}", f"{c / base_cpu:.2f}"])
    head = ["setup", "jobs/s", "vs quiet", "jobs/CPU-s", "vs quiet"]
    print(table(rows, head))


if __name__ == "__main__":
    main()
