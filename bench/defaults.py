"""Which ``--concurrency`` / ``--prefetch`` a worker should default to, measured.

    .venv/bin/python -m bench.defaults [--runs 2] [--jobs 4000] [--seconds 4]
    .venv/bin/python -m bench.defaults --concurrency 10 --prefetch 10 20 40 100 auto

For each pair of values in the grid, one ``stem worker`` process (the real CLI) is timed on
three workloads, with the grid's cells interleaved within each run so that the machine's
load drifts across all of them alike:

1. drain of ``--jobs`` no-op async jobs (the worker's own overhead);
2. drain of ``--jobs / 4`` of the peers' job, one blocking ``INCR`` in the thread pool
   (an I/O-bound sync task, the common case);
3. end-to-end latency at a steady 200 jobs/s for ``--seconds`` (p50 / p99).

Rates are reported as a ratio of the grid's best cell in the same run (medians of
``--runs``), so the table reads "how much of the best this setting gets".
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics

from bench.common import percentile, private_redis, table
from bench.peers import job
from bench.worker import drain, latency

CONCURRENCY = (1, 10, 50)
PREFETCH = ("0", "10", "100", "auto")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY))
    parser.add_argument("--prefetch", nargs="+", default=list(PREFETCH), help="numbers or auto")
    args = parser.parse_args()
    grid = list(itertools.product(args.concurrency, args.prefetch))
    noop: dict[tuple[int, str], list[float]] = {cell: [] for cell in grid}
    incr: dict[tuple[int, str], list[float]] = {cell: [] for cell in grid}
    lat: dict[tuple[int, str], list[float]] = {cell: [] for cell in grid}
    loads = []
    with private_redis() as server:
        os.environ[job.URL_ENV] = server.url  # the INCR job's Redis, inherited by workers
        for _ in range(args.runs):
            for c, p in grid:
                opts = ["--concurrency", str(c), "--prefetch", str(p)]
                noop[c, p].append(drain(server.url, "bench.noop_async", args.jobs, 1, opts)[0])
                incr[c, p].append(drain(server.url, "bench.incr", args.jobs // 4, 1, opts)[0])
                lat[c, p].extend(latency(server.url, 200, args.seconds, opts))
                loads.append(os.getloadavg()[0])
    best_noop = max(statistics.median(v) for v in noop.values())
    best_incr = max(statistics.median(v) for v in incr.values())
    rows = []
    for cell in grid:
        n, i = statistics.median(noop[cell]), statistics.median(incr[cell])
        rows.append(
            (
                f"--concurrency {cell[0]} --prefetch {cell[1]}",
                f"{n:,.0f}/s ({n / best_noop:.2f})",
                f"{i:,.0f}/s ({i / best_incr:.2f})",
                f"{percentile(lat[cell], 50):.2f} / {percentile(lat[cell], 99):.2f} ms",
            )
        )
    print(
        f"one worker; medians of {args.runs} interleaved runs; load average "
        f"{min(loads):.1f}-{max(loads):.1f}; (x) = share of the best cell in this run"
    )
    print(table(rows, ("setting", "no-op async drain", "INCR job drain", "latency p50 / p99")))


if __name__ == "__main__":
    main()
