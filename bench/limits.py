"""What limits cost, and how exact they are, in one run.

    .venv/bin/python -m bench.limits [--jobs 3000] [--runs 5] [--seconds 10]

1. Overhead: the drain rate of no-op async jobs under a limit that never throttles
   (``rate_limit="1000000/s"``) against the same jobs without a limit, one worker
   (``--concurrency 50 --prefetch 500``). ``--runs`` pairs, interleaved and alternating
   which goes first, so drift on a noisy machine hits both; the ratio is the median of
   the pairs' ratios (target >= 0.80x: each delivery reads and writes the rate state in
   the fetch script, no extra round trip). The same pairs for the fetch script alone
   (this process fetches batches of 500 until the queue is empty, no worker): the
   script's own cost, less exposed to a noisy machine than a drain.
2. Accuracy: ``--seconds`` worth of jobs under ``rate_limit="100/s"`` and under
   ``"20/s"``, drained by two workers and a rate limiter; the achieved rate is
   (n - 1) / (last start - first start), from the server-time starts in the job records.
   Reported against the configured rate (target within 2%).

The load average is printed before and after: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from bench.apps import app as bench_app
from bench.common import private_redis, table
from bench.worker import ROOT, drain, start_worker
from stem import Stem


def _bench_app(url: str, namespace: str) -> Stem:
    """The benchmark app itself: only an app that registers a task resolves its limits
    (a job enqueued by name from an app that does not know the task has none)."""
    bench_app.connect(url, namespace=namespace)
    return bench_app


ASYNC = ["--concurrency", "50", "--prefetch", "500"]


def achieved_rate(url: str, task: str, jobs: int) -> float:
    """Starts per second of ``jobs`` jobs of ``task``, two workers and a limiter."""
    ns = f"r{time.monotonic_ns()}"
    app = _bench_app(url, ns)
    handles = app.enqueue_many(task, [() for _ in range(jobs)])
    argv = [sys.executable, "-m", "stem", "--redis-url", url, "--namespace", ns]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STEM_LOG_LEVEL": "WARNING"}
    limiter = subprocess.Popen(  # noqa: S603  (argv of our own stem command)
        [*argv, "--app", "bench.apps:app", "ratelimit"], cwd=ROOT, env=env
    )
    deadline = time.monotonic() + 120
    while not app.broker.actors("ratelimiter") and time.monotonic() < deadline:
        time.sleep(0.05)  # a limiter that is still starting would be measured as lag
    workers = [start_worker(url, ns, "--burst", *ASYNC) for _ in range(2)]
    try:
        for w in workers:
            w.wait(timeout=600)
    finally:
        limiter.terminate()
        limiter.wait(timeout=30)
    starts = sorted(int(r.start_ms or 0) for h in handles if (r := app.broker.job("default", h.id)))
    app.close()
    return (len(starts) - 1) / ((starts[-1] - starts[0]) / 1000)


def fetch_rate(url: str, task: str, jobs: int, batch: int = 500) -> float:
    """Jobs per second that the fetch script delivers (no worker: this process fetches
    batches of ``batch`` until the queue is empty), under ``task``'s limits."""
    ns = f"f{time.monotonic_ns()}"
    app = _bench_app(url, ns)
    app.enqueue_many(task, [() for _ in range(jobs)])
    specs = tuple(app.limit_specs().values())  # as a worker of this app passes them
    got, started = 0, time.perf_counter()
    while got < jobs:
        delivered = app.broker.fetch("default", "bench", batch, specs)
        if not delivered:
            break
        got += len(delivered)
    rate = got / (time.perf_counter() - started)
    app.close()
    return rate


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"load average before: {load()}")
    rows = []
    with private_redis() as server:
        url = server.url
        print(f"redis-server: {server.binary}")
        plain: list[float] = []
        limited: list[float] = []
        ratios: list[float] = []
        for i in range(args.runs):  # interleaved, alternating which goes first
            cases = [("bench.noop_async", plain), ("bench.noop_unthrottled", limited)]
            for task, out in cases if i % 2 == 0 else cases[::-1]:
                out.append(drain(url, task, args.jobs, 1, ASYNC, bench_app)[0])
            ratios.append(limited[-1] / plain[-1])
        p, lim = statistics.median(plain), statistics.median(limited)
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        rows += [
            ["drain, no limit", f"{p:,.0f} jobs/s", "1.00x", ""],
            [
                "drain, 1000000/s limit",
                f"{lim:,.0f} jobs/s",
                f"{statistics.median(ratios):.2f}x (pairs {spread})",
                ">= 0.80x",
            ],
        ]
        bare: list[float] = []
        under: list[float] = []
        for i in range(args.runs):  # the fetch script alone, the same pairs
            cases = [("bench.noop_async", bare), ("bench.noop_unthrottled", under)]
            for task, out in cases if i % 2 == 0 else cases[::-1]:
                out.append(fetch_rate(url, task, args.jobs))
        fetch_ratios = [u / b for u, b in zip(under, bare, strict=True)]
        rows += [
            ["fetch script, no limit", f"{statistics.median(bare):,.0f} jobs/s", "1.00x", ""],
            [
                "fetch script, 1000000/s limit",
                f"{statistics.median(under):,.0f} jobs/s",
                f"{statistics.median(fetch_ratios):.2f}x "
                f"(pairs {min(fetch_ratios):.2f}-{max(fetch_ratios):.2f})",
                "",
            ],
        ]
        for rate, task in ((100, "bench.rated"), (20, "bench.rated20")):
            got = achieved_rate(url, task, int(rate * args.seconds))
            rows.append(
                [f"achieved rate, {rate}/s", f"{got:.2f} /s", f"{got / rate:.3f}x", "0.98-1.02x"]
            )
    print(table(rows, ["case", "rate", "ratio", "target"]))
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
