"""CPU per job of a system's worker and of Redis, with the queue full and at a set pace.

    .venv/bin/python -m bench.peers.cpu [--jobs 20000] [--rates 0,3500,1500]
                                        [--processes 1] [--runs 2] [--only stem ceiling]

Why it exists: on a 2-CPU machine, what two worker processes can drain is bounded by the
CPU each job costs the workers and Redis together, and a worker's cost per job depends on
how busy it is (docs/performance.md, "Two processes on two CPUs"). For each system and
rate, the system's workers are started with its own CLI (as ``bench.peers`` does), take
one warm-up job, and then ``--jobs`` jobs arrive: all at once through the bulk API (rate
``0``, "full": the workers are never short of work) or at ``rate`` jobs/s as a bulk
enqueue every 5 ms (a producer that takes no CPU between its enqueues). Reported, per
job: the workers' CPU (user and system, each worker and its live children) and Redis's
(``INFO cpu``, which includes the enqueues and the counter's polling), medians of
``--runs``, runs interleaved across systems; jobs/s as in ``bench.peers``, (jobs - 1) /
(last - first completion), so the producer's start-up is not counted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
from pathlib import Path
from typing import Any

import redis

from bench.common import private_redis, table
from bench.peers import job
from bench.peers.harness import (
    Workers,
    open_workers,
    run_driver,
    tree_read,
    unavailable,
    wait_count,
)
from bench.peers.systems import System, by_name


def _tree_cpu_s(workers: Workers) -> tuple[float, float]:
    """User and system CPU seconds of the workers and the children alive now (a peer that
    forks per job would be under-counted; stem's and the ceiling's workers keep theirs)."""
    times = tree_read(workers.procs, lambda proc: proc.cpu_times())
    return sum(t.user for t in times), sum(t.system for t in times)


def _redis_cpu_s(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def measure(
    system: System, url: str, jobs: int, rate: float, processes: int, log: Path
) -> dict[str, float]:
    """One run: jobs/s and CPU microseconds per job (workers' user and system, Redis)."""
    client: Any = redis.Redis.from_url(url)
    client.flushall()
    with open_workers(system, url, processes, log) as workers:
        run_driver(system, url, "single", "1")
        wait_count(client, 1, workers)
        user0, sys0 = _tree_cpu_s(workers)
        redis0 = _redis_cpu_s(client)
        args = ("batches", str(rate), str(jobs)) if rate > 0 else ("fill", str(jobs))
        producer = threading.Thread(target=run_driver, args=(system, url, *args), daemon=True)
        producer.start()
        first, last = wait_count(client, 1 + jobs, workers, done_before=1)
        producer.join()
        user1, sys1 = _tree_cpu_s(workers)
        redis1 = _redis_cpu_s(client)
    client.close()
    per_job = 1e6 / jobs
    return {
        "rate": (jobs - 1) / max(last - first, 1e-6),
        "user": (user1 - user0) * per_job,
        "sys": (sys1 - sys0) * per_job,
        "redis": (redis1 - redis0) * per_job,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rates", default="0,3500,1500", help="jobs/s; 0: all at once")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--only", nargs="+", default=["stem", "ceiling"], metavar="SYSTEM")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    try:
        named = by_name(args.only)
    except ValueError as exc:
        parser.error(str(exc))  # one line and exit 2, as bench.peers does
    systems = []
    for system in named:
        why = unavailable(system)
        if why is None:
            systems.append(system)
        else:
            print(f"{system.name}: {why}")
    results: dict[tuple[str, float], list[dict[str, float]]] = {}
    # The workers' output, for the error a failed run raises (its last line); removed after.
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as logs, private_redis() as server:
        log = Path(logs) / "workers.log"
        for _ in range(args.runs):
            for rate in rates:
                for system in systems:
                    got = measure(system, server.url, args.jobs, rate, args.processes, log)
                    results.setdefault((system.name, rate), []).append(got)
    rows = []
    for (name, rate), runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        worker = med["user"] + med["sys"]
        rows.append([
            name, "full" if rate == 0 else f"{rate:,.0f}/s", f"{med['rate']:,.0f}",
            f"{worker:.0f} ({med['user']:.0f} + {med['sys']:.0f})", f"{med['redis']:.0f}",
            f"{worker + med['redis']:.0f}",
        ])  # fmt: skip
    print(
        f"{args.jobs:,} jobs, {args.processes} worker process(es), medians of {args.runs} "
        f"runs; CPU in microseconds per job (the job: {job.__name__})\n"
    )
    header = ["system", "arrivals", "jobs/s", "workers (user + sys)", "redis", "together"]
    print(table(rows, header))


if __name__ == "__main__":
    main()
