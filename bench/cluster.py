"""Redis CPU per job, and drain rates, on one Redis and on a 3-master Redis Cluster.

    .venv/bin/python -m bench.cluster [--jobs 10000] [--runs 3] [--enqueues 3000]

Both servers run here, privately (the cluster is three ``redis-server --cluster-enabled``
processes formed with ``redis-cli``, as the tests do). For each:

1. **Redis CPU per job** (server ``used_cpu_user + used_cpu_sys`` from ``INFO cpu``,
   summed over the masters, divided by the jobs): for a bulk enqueue, and for fetch +
   complete (the worker's two calls per batch, made in-process in batches of 500).
   ``1 / cpu_per_job`` is the ceiling of one Redis core for that step.
2. **Drain rate**, measured on both servers in the same run, alternating single and
   cluster (and which goes first) run by run; the ratio is taken per pair, so the
   machine's load drifting between runs cancels out: the worker drain of
   ``bench/worker.py`` (no-op async jobs on one queue, two ``stem worker --burst``
   processes) and the same jobs spread over three queues (on a cluster each on a
   different master). Rates come from the server
   timestamps in the job records. The load average is printed at the start and the end.
3. **Durable enqueue cost**: single enqueues per second to a master with one replica,
   without and with ``Stem(durable_enqueue_replicas=1)`` (a ``WAIT`` after each).

Medians of ``--runs``. On one machine the cluster's masters share its cores with the
workers, so the drain rates compare the code paths, not what separate hosts would give.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench.common import private_redis, table
from bench.worker import drain, start_worker
from stem import Stem
from stem.broker import Settlement
from stem.embedded import EmbeddedRedis
from stem.outcome import Verdict
from tests.cluster import LocalCluster
from tests.worker.test_cluster import queues_on_every_master

BATCH = 500


def server_cpu_s(ports: list[int]) -> float:
    """CPU seconds the servers on ``ports`` have used so far."""
    total = 0.0
    for port in ports:
        info = redis.Redis(port=port).info("cpu")
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


def cpu_per_job(url: str, ports: list[int], queues: list[str], jobs: int) -> tuple[float, float]:
    """(enqueue, fetch + complete) Redis CPU microseconds per job."""
    app = Stem(url, namespace=f"c{time.monotonic_ns()}")
    broker: Any = app.broker
    per_queue = jobs // len(queues)

    def measured(step: Callable[[], None]) -> float:
        before = server_cpu_s(ports)
        step()
        return (server_cpu_s(ports) - before) / (per_queue * len(queues)) * 1e6

    def enqueue() -> None:
        for q in queues:
            app.enqueue_many("bench.noop_async", [() for _ in range(per_queue)], queue=q)

    def drain() -> None:
        for q in queues:
            while batch := broker.fetch(q, "bench", BATCH):
                broker.settle([Settlement(d, Verdict.COMPLETE, "null") for d in batch])

    enq = measured(enqueue)
    fetch_settle = measured(drain)
    app.close()
    return enq, fetch_settle


def drain_rate(url: str, queues: list[str], jobs: int) -> float:
    """Jobs/s of two burst workers draining ``jobs`` no-op jobs spread over ``queues``."""
    ns = f"d{time.monotonic_ns()}"
    app = Stem(url, namespace=ns)
    handles = [
        (q, h)
        for q in queues
        for h in app.enqueue_many("bench.noop_async", [()] * (jobs // len(queues)), queue=q)
    ]
    spec = ",".join(f"{q}:1" for q in queues)
    opts = ["--burst", "-Q", spec, "--concurrency", "50", "--prefetch", "500"]
    procs = [start_worker(url, ns, *opts) for _ in range(2)]
    for p in procs:
        p.wait(timeout=600)
    rows = []
    for q, h in handles:
        record = app.broker.job(q, h.id)
        assert record is not None and record.end_ms is not None  # noqa: S101  (self-check)
        rows.append((record.start_ms or 0, record.end_ms))
    app.close()
    first, last = min(r[0] for r in rows), max(r[1] for r in rows)
    return len(rows) / max((last - first) / 1000, 1e-6)


def load() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu(url: str, ports: list[int], queues: list[str], jobs: int, runs: int) -> tuple[float, float]:
    """Median (enqueue, fetch + complete) Redis CPU microseconds per job."""
    got = [cpu_per_job(url, ports, queues, jobs) for _ in range(runs)]
    return statistics.median(c[0] for c in got), statistics.median(c[1] for c in got)


#: The worker options of bench/worker.py's async drain.
ASYNC_OPTS = ["--concurrency", "50", "--prefetch", "500"]


def drains(
    servers: dict[str, tuple[str, list[str]]], jobs: int, runs: int
) -> dict[tuple[str, str], list[float]]:
    """Jobs/s per (drain, server) and run; each run drains on every server in turn, and
    every other run in the reverse order (so going first or second favours neither)."""
    rates: dict[tuple[str, str], list[float]] = {}
    for run in range(runs):
        order = list(servers.items())
        for label, (url, queues) in order[::-1] if run % 2 else order:
            one_queue = drain(url, "bench.noop_async", jobs, 2, ASYNC_OPTS)[0]
            rates.setdefault(("1 queue", label), []).append(one_queue)
            three = drain_rate(url, queues, jobs)
            rates.setdefault(("3 queues", label), []).append(three)
    return rates


def durable_cost(enqueues: int, runs: int) -> tuple[float, float]:
    """(plain, durable) single enqueues/s to a master that has one synced replica."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedRedis(Path(tmp) / "m", appendonly=False) as master,
        EmbeddedRedis(Path(tmp) / "r", appendonly=False) as replica,
    ):
        link = redis.Redis(port=replica.port)
        link.replicaof("127.0.0.1", master.port)
        while link.info("replication")["master_link_status"] != "up":
            time.sleep(0.02)

        def run(replicas: int) -> float:
            app = Stem(
                master.url,
                namespace=f"e{time.monotonic_ns()}",
                durable_enqueue_replicas=replicas,
            )
            app.enqueue("bench.noop_async")  # connect and load the scripts first
            start = time.perf_counter()
            for _ in range(enqueues):
                app.enqueue("bench.noop_async")
            elapsed = time.perf_counter() - start
            app.close()
            return enqueues / elapsed

        plain = statistics.median(run(0) for _ in range(runs))
        durable = statistics.median(run(1) for _ in range(runs))
    return plain, durable


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--enqueues", type=int, default=3000)
    args = parser.parse_args()
    started_load = load()
    with (
        private_redis() as server,
        tempfile.TemporaryDirectory() as tmp,
        LocalCluster(Path(tmp), masters=3) as cluster,
    ):
        single_q = ["q0", "q1", "q2"]
        queues = queues_on_every_master(cluster)
        ports = [n.port for n in cluster.masters()]
        costs = {
            "1 Redis": cpu(server.url, [server.port], single_q, args.jobs, args.runs),
            "3-master cluster": cpu(cluster.url, ports, queues, args.jobs, args.runs),
        }
        servers = {"1 Redis": (server.url, single_q), "3-master cluster": (cluster.url, queues)}
        rates = drains(servers, args.jobs, args.runs)
    rows = []
    for label, (enq, settle) in costs.items():
        total = enq + settle
        rows.append((label, f"{enq:.1f} us", f"{settle:.1f} us", f"{1e6 / total:,.0f}/s"))
    print(f"{args.jobs:,} jobs per run; medians of {args.runs} runs; load {started_load}")
    header = ("server", "CPU/job enqueue", "CPU/job fetch+complete", "1 core ceiling")
    print(table(rows, header))
    drain_rows = []
    for what in ("1 queue", "3 queues"):
        single, clustered = rates[(what, "1 Redis")], rates[(what, "3-master cluster")]
        ratios = [c / s for s, c in zip(single, clustered, strict=True)]
        drain_rows.append(
            (
                f"2 workers, {what}",
                f"{statistics.median(single):,.0f}/s",
                f"{statistics.median(clustered):,.0f}/s",
                f"{statistics.median(ratios):.2f}x",
                " ".join(f"{r:.2f}" for r in ratios),
            )
        )
    print("\ndrain of no-op async jobs (runs alternate between the servers)")
    drain_header = ("drain", "1 Redis", "3-master cluster", "cluster / 1 Redis", "per run")
    print(table(drain_rows, drain_header))
    plain, durable = durable_cost(args.enqueues, args.runs)
    print(
        f"\nsingle enqueue to a master with one replica ({args.enqueues:,} each): "
        f"{plain:,.0f}/s plain, {durable:,.0f}/s with durable_enqueue_replicas=1 "
        f"({durable / plain:.2f}x)"
    )
    print(f"\nload average at the end: {load()}")


if __name__ == "__main__":
    main()
