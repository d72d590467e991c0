"""Worker throughput, latency and memory, beside the bare Redis ceiling, in one run.

    .venv/bin/python -m bench.worker [--jobs 20000] [--runs 3] [--rate 200] [--seconds 10]

1. Drain rate of no-op async and no-op sync jobs by one and by two worker processes
   (jobs are enqueued first; the rate is jobs / (last end - first start), from the
   server timestamps in the job records). Median of ``--runs``.
2. The bare ceiling for the same pattern in one Python process: ``XREADGROUP COUNT n``
   plus batched ``XACK``/``XDEL`` of the same number of entries.
3. End-to-end latency at a steady ``--rate`` jobs/s (enqueue -> the job running, on the
   task's own clock), p50/p99.
4. Peak RSS of a worker process while draining (psutil).
5. Thread hops per job at that rate (``ThreadPool.run`` and ``trio.to_thread`` calls of one
   in-process worker): a count, so it does not swing with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
import redis

from bench.common import percentile, private_redis, table
from stem import Stem

ROOT = Path(__file__).resolve().parent.parent


def start_worker(url: str, ns: str, *args: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "stem", "--redis-url", url, "--namespace", ns]
    argv += ["--app", "bench.apps:app", "worker", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STEM_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(argv, cwd=ROOT, env=env)  # noqa: S603  (argv of our own stem command)


def drain(
    url: str, task: str, jobs: int, workers: int, extra: list[str], app: Stem | None = None
) -> tuple[float, float]:
    """(jobs/s, peak worker RSS MB) for ``jobs`` no-op jobs drained by ``workers``.
    ``app``, when given, is pointed at the run's namespace and enqueues (its tasks'
    limits apply); else a bare app enqueues by name."""
    ns = f"d{time.monotonic_ns()}"
    if app is None:
        app = Stem(url, namespace=ns)
    else:
        app.connect(url, namespace=ns)
    handles = app.enqueue_many(task, [() for _ in range(jobs)])
    procs = [start_worker(url, ns, "--burst", *extra) for _ in range(workers)]
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            for p in procs:
                try:
                    tree = [psutil.Process(p.pid), *psutil.Process(p.pid).children(recursive=True)]
                    peak[0] = max(peak[0], sum(x.memory_info().rss for x in tree) / 2**20)
                except psutil.NoSuchProcess:
                    pass

    sampler = threading.Thread(target=sample)
    sampler.start()
    for p in procs:
        p.wait(timeout=600)
    stop.set()
    sampler.join()
    keys = app.broker.keys.queue("default")
    with app.broker.client.pipeline(transaction=False) as pipe:
        for h in handles:
            pipe.hmget(keys.job(h.id), "start_ms", "end_ms", "state")
        rows = pipe.execute()
    assert all(r[2] == b"succeeded" for r in rows), "some jobs did not succeed"  # noqa: S101  (benchmark self-check, not library code)
    first, last = min(int(r[0]) for r in rows), max(int(r[1]) for r in rows)
    app.close()
    return jobs / max((last - first) / 1000, 1e-6), peak[0]


def bare_ceiling(url: str, jobs: int, batch: int = 500) -> float:
    """XREADGROUP COUNT n + pipelined XACK/XDEL, no Lua, no job records."""
    r: Any = redis.Redis.from_url(url)  # untyped replies: the Any boundary
    stream = f"bare:{time.monotonic_ns()}"
    r.xgroup_create(stream, "g", id="0", mkstream=True)
    with r.pipeline(transaction=False) as pipe:
        for _ in range(jobs):
            pipe.xadd(stream, {"id": "x"})
        pipe.execute()
    start = time.perf_counter()
    done = 0
    while done < jobs:
        reply = r.xreadgroup("g", "c", {stream: ">"}, count=batch)
        ids = [eid for eid, _ in reply[0][1]]
        with r.pipeline(transaction=False) as pipe:
            pipe.xack(stream, "g", *ids)
            pipe.xdel(stream, *ids)
            pipe.execute()
        done += len(ids)
    return jobs / (time.perf_counter() - start)


def latency(
    url: str, per_s: int, seconds: float, extra: Sequence[str] = ("--concurrency", "10")
) -> list[float]:
    """End-to-end ms (client clock before enqueue -> the job's own clock when it runs) at
    a steady rate."""
    ns = f"l{time.monotonic_ns()}"
    app = Stem(url, namespace=ns)
    proc = start_worker(url, ns, *extra)
    app.enqueue("bench.noop_async").result(timeout_s=30)  # worker is up and warm
    sent: list[tuple[str, float]] = []
    interval = 1 / per_s
    next_at = time.perf_counter()
    for _ in range(int(per_s * seconds)):
        while time.perf_counter() < next_at:
            pass
        next_at += interval
        t0 = time.time()
        sent.append((app.enqueue("bench.stamp").id, t0))
    ran = [app.job(jid, "default").result(timeout_s=30) for jid, _ in sent]
    proc.terminate()
    proc.wait(timeout=30)
    app.close()
    return [(r - t0) * 1000 for (_, t0), r in zip(sent, ran, strict=True)]


def thread_hops(url: str, per_s: int, n: int = 400) -> float:
    """Thread hand-offs per job of one in-process worker at ``per_s``: calls of its
    thread pools (``ThreadPool.run``) and of ``trio.to_thread.run_sync``."""
    import trio
    import trio.to_thread

    from stem.worker.core import Worker, WorkerOptions
    from stem.worker.threads import ThreadPool

    app = Stem(url, namespace=f"h{time.monotonic_ns()}")
    app.task(name="bench.noop_async")(_noop)
    real, real_pool = trio.to_thread.run_sync, ThreadPool.run
    calls = [0]

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await real(*args, **kwargs)

    async def counting_pool(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await real_pool(*args, **kwargs)

    def produce() -> None:
        for _ in range(n):
            app.enqueue("bench.noop_async")
            time.sleep(1 / per_s)
        app.enqueue("bench.noop_async").result(timeout_s=30)

    async def run() -> float:
        worker = Worker(app, WorkerOptions(concurrency=10))  # the defaults
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.serve)
            await trio.sleep(0.5)  # settled in: heartbeat, first empty fetch
            before = calls[0]
            await real(produce)
            hops = (calls[0] - before) / (n + 1)
            worker.request_stop()
        return hops

    trio.to_thread.run_sync = counting  # type: ignore[assignment]
    ThreadPool.run = counting_pool  # type: ignore[method-assign]
    try:
        return trio.run(run)
    finally:
        trio.to_thread.run_sync = real
        ThreadPool.run = real_pool  # type: ignore[method-assign]
        app.close()


async def _noop() -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--cpu", default="auto", help="every worker's --cpu (auto, off): A/B of Change 10"
    )
    args = parser.parse_args()
    async_opts = ["--concurrency", "50", "--prefetch", "500", "--cpu", args.cpu]
    sync_opts = ["--concurrency", "2", "--prefetch", "50", "--cpu", args.cpu]
    rows = []
    with private_redis() as server:
        ceiling = statistics.median(bare_ceiling(server.url, args.jobs) for _ in range(args.runs))
        rows.append(("bare XREADGROUP+XACK (1 proc)", f"{ceiling:,.0f}/s", "", ""))
        cases = [
            ("no-op async, 1 worker", "bench.noop_async", 1, async_opts),
            ("no-op async, 2 workers", "bench.noop_async", 2, async_opts),
            ("no-op sync, 1 worker", "bench.noop_sync", 1, sync_opts),
            ("no-op sync, 2 workers", "bench.noop_sync", 2, sync_opts),
        ]
        for label, task, n, opts in cases:
            n_jobs = args.jobs if "async" in task else args.jobs // 4
            results = [drain(server.url, task, n_jobs, n, opts) for _ in range(args.runs)]
            jobs_s = statistics.median(r[0] for r in results)
            rss = max(r[1] for r in results)
            rows.append((label, f"{jobs_s:,.0f}/s", f"{jobs_s / ceiling:.2f}x", f"{rss:.0f} MB"))
        lat = latency(
            server.url, args.rate, args.seconds, ("--concurrency", "10", "--cpu", args.cpu)
        )
        hops = thread_hops(server.url, args.rate)
    print(
        f"redis: {server.binary}; {args.jobs:,} async / {args.jobs // 4:,} sync jobs; "
        f"medians of {args.runs} runs; RSS = worker + pool children, peak; --cpu {args.cpu}"
    )
    print(table(rows, ("case", "rate", "of ceiling", "peak RSS")))
    print(
        f"\nend-to-end latency at {args.rate} jobs/s for {args.seconds:.0f} s (n={len(lat)}): "
        f"p50 {percentile(lat, 50):.2f} ms, p99 {percentile(lat, 99):.2f} ms "
        "(targets: p50 <= 0.8 ms, p99 <= 2.0 ms)"
    )
    print(f"thread hops per job at {args.rate} jobs/s (one in-process worker): {hops:.2f}")


if __name__ == "__main__":
    main()
