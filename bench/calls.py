"""Function calls and Redis commands per job in a draining worker: a measure that the
machine's noise does not move.

    .venv/bin/python -m bench.calls [--job incr|noop] [--jobs 5000] [--runs 3] [--top 40]

Why: on this shared VM a worker's jobs/s and CPU per job drift by more than most single
changes to its hot path (docs/performance.md, "Tried and dropped"), but how many Python
functions it calls per job, and how many Redis commands it sends, hardly vary. Since a
worker's CPU is mostly the interpreter running its Python (about 70% under ``perf``, the
rest the kernel), fewer calls per job is the direction to push, and this counts them.

One in-process worker (``serve_worker``, the defaults: concurrency 10, prefetch auto)
drains a warm-up of 300 jobs, then ``--jobs`` jobs with ``sys.setprofile`` and
``threading.setprofile`` on (every thread the worker starts is counted; a thread started
earlier, such as trio's thread cache, is not). ``--job incr`` is the peers' job (a sync
task doing one Redis ``INCR`` on the thread pool; what the job alone costs, one
``INCR`` called directly, is printed with it), ``noop`` an async task that does
nothing. Reported per job, medians of ``--runs``: Python calls (per package), C calls,
and Redis commands (``INFO commandstats``; the job's own ``INCR`` included). Counts, not
times: a call into a C function that does much work counts once.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import redis
import trio

from bench.common import private_redis, table
from stem import Stem
from stem.worker import WorkerOptions, serve_worker

WARM_UP_JOBS = 300
JOB_MODULE = "bench/calls.py"  # the job's own frame (the incr task's body)


def _group(filename: str) -> str:
    """A package-level name for a function's file: ``stem/worker``, ``trio``, ``stdlib``."""
    path = filename.replace("\\", "/")
    if "/site-packages/" in path:
        return path.split("/site-packages/")[1].split("/")[0].removesuffix(".py")
    if "/stem/" in path:
        parts = path.split("/stem/")[-1].split("/")
        return "stem/" + parts[0].removesuffix(".py") if len(parts) > 1 else "stem"
    if path.endswith(JOB_MODULE):
        return "the job"
    if path.startswith("<"):
        return "generated (dataclass, attrs)"
    return "stdlib"


class Counter:
    """Counts ``call`` and ``c_call`` profile events, per code object (Python) and overall
    (C). The profile function runs in every thread it is installed in."""

    def __init__(self) -> None:
        self.python: collections.Counter[Any] = collections.Counter()
        self.c_calls = 0

    def profile(self, frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call":
            self.python[frame.f_code] += 1
        elif event == "c_call":
            self.c_calls += 1

    def __enter__(self) -> Counter:
        threading.setprofile(self.profile)
        sys.setprofile(self.profile)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)
        threading.setprofile(None)  # None removes it


def _app(url: str, job: str) -> tuple[Stem, str]:
    app = Stem(url, namespace="calls")
    if job == "noop":

        @app.task(name="bench.calls.noop")
        async def noop() -> None:
            return None

        return app, "bench.calls.noop"
    client = redis.Redis.from_url(url)

    @app.task(name="bench.calls.incr", pool="threads")
    def incr() -> None:
        client.incr("bench:calls")

    return app, "bench.calls.incr"


def _commands(client: Any) -> int:
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


def measure(url: str, job: str, jobs: int) -> tuple[dict[str, float], dict[str, float], float]:
    """One run: Python calls per job by group and by function, and C calls per job."""
    app, task = _app(url, job)
    options = WorkerOptions(concurrency=10, burst=True)
    client: Any = redis.Redis.from_url(url)
    app.enqueue_many(task, [() for _ in range(WARM_UP_JOBS)])
    trio.run(serve_worker, app, options)
    app.enqueue_many(task, [() for _ in range(jobs)])
    client.config_resetstat()
    with Counter() as counted:
        trio.run(serve_worker, app, options)
    commands = _commands(client)
    app.close()
    client.close()
    groups: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    for code, n in counted.python.items():
        group = _group(code.co_filename)
        groups[group] += n
        functions[f"{group}: {code.co_qualname}"] += n
    per_group = {g: n / jobs for g, n in groups.items()}
    per_group["C calls"] = counted.c_calls / jobs
    per_group["Redis commands"] = commands / jobs
    return per_group, {f: n / jobs for f, n in functions.items()}, sum(groups.values()) / jobs


def _job_alone(url: str) -> float:
    """Python calls of one redis-py ``INCR``, called directly (the peers' job alone)."""
    client = redis.Redis.from_url(url)
    client.incr("bench:calls")  # connect first
    with Counter() as counted:
        for _ in range(100):
            client.incr("bench:calls")
    client.close()
    return sum(counted.python.values()) / 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", choices=("incr", "noop"), default="incr")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    runs = []
    with private_redis() as server:
        for _ in range(args.runs):
            redis.Redis.from_url(server.url).flushall()
            runs.append(measure(server.url, args.job, args.jobs))
        alone = _job_alone(server.url) if args.job == "incr" else None

    def median(which: Callable[[Any], dict[str, float]], key: str) -> float:
        return statistics.median(which(r).get(key, 0.0) for r in runs)

    total = statistics.median(r[2] for r in runs)
    print(f"{args.job} job, {args.jobs:,} jobs, medians of {args.runs} runs, per job\n")
    print(f"Python calls: {total:.0f}")
    if alone is not None:
        print(f"of which the job itself (one INCR called directly): {alone:.0f}")
    print()
    keys = sorted({k for r in runs for k in r[0]}, key=lambda k: -median(lambda r: r[0], k))
    print(table([[k, f"{median(lambda r: r[0], k):.1f}"] for k in keys], ["group", "per job"]))
    names = collections.Counter({k: median(lambda r: r[1], k) for r in runs for k in r[1]})
    rows = [[name, f"{n:.2f}"] for name, n in names.most_common(args.top)]
    print()
    print(table(rows, ["function (Python)", "calls per job"]))


if __name__ == "__main__":
    main()
