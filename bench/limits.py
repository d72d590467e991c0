"""What limits cost, and how exact they are, in one run.

    .venv/bin/python -m bench.limits [--jobs 5000] [--runs 3] [--rated 1000]

1. Overhead: the drain rate of no-op async jobs under a limit that never throttles
   (``rate_limit="1000000/s"``) against the same jobs without a limit, one worker
   (``--concurrency 50 --prefetch 500``), interleaved, median of ``--runs``. Reported as
   a ratio (target >= 0.80x: each delivery reads and writes a token bucket in the fetch
   script, no extra round trip).
2. Accuracy: ``--rated`` jobs under ``rate_limit="100/s"`` drained by two workers and a
   rate limiter; the achieved rate is (n - 1) / (last start - first start), from the
   server-time starts in the job records. Reported against 100/s (target within 2%).
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


def achieved_rate(url: str, jobs: int) -> float:
    """Starts per second of ``jobs`` jobs under 100/s, two workers and a limiter."""
    ns = f"r{time.monotonic_ns()}"
    app = _bench_app(url, ns)
    handles = app.enqueue_many("bench.rated", [() for _ in range(jobs)])
    argv = [sys.executable, "-m", "stem", "--redis-url", url, "--namespace", ns]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STEM_LOG_LEVEL": "WARNING"}
    limiter = subprocess.Popen(  # noqa: S603  (argv of our own stem command)
        [*argv, "--app", "bench.apps:app", "ratelimit"], cwd=ROOT, env=env
    )
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rated", type=int, default=1000)
    args = parser.parse_args()
    with private_redis() as server:
        url = server.url
        print(f"redis-server: {server.binary}")
        plain, limited = [], []
        for _ in range(args.runs):  # interleaved, so drift on a noisy machine hits both
            plain.append(drain(url, "bench.noop_async", args.jobs, 1, ASYNC, bench_app)[0])
            limited.append(drain(url, "bench.noop_unthrottled", args.jobs, 1, ASYNC, bench_app)[0])
        p, lim = statistics.median(plain), statistics.median(limited)
        rate = achieved_rate(url, args.rated)
    rows = [
        ["drain, no limit", f"{p:,.0f} jobs/s", "1.00x", ""],
        ["drain, 1000000/s limit", f"{lim:,.0f} jobs/s", f"{lim / p:.2f}x", ">= 0.80x"],
        ["achieved rate, 100/s", f"{rate:.1f} /s", f"{rate / 100:.3f}x", "0.98-1.00x"],
    ]
    print(table(rows, ["case", "rate", "ratio", "target"]))


if __name__ == "__main__":
    main()
