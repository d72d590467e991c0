"""What a draining worker's memory is: peak RSS of ``stem worker`` and its pool children,
and which imports it is made of.

    .venv/bin/python -m bench.worker_rss [--jobs 5000] [--runs 3] [--trees A,B]

1. **Peak RSS while draining**: ``--jobs`` no-op jobs are enqueued into a private
   redis-server, then one ``stem worker --burst`` (the real CLI, a subprocess) drains
   them; psutil samples the worker's RSS and each pool child's every 20 ms. Cases: async
   no-op (``--concurrency 50 --prefetch 500``) and sync no-op in the process pool
   (``--pool processes --concurrency 2 --prefetch 50``: two children). Reported: the
   worker's peak, the largest child's peak, and the peak of the sum; each the median of
   ``--runs``.
2. **A/B in one run**: ``--trees`` names source trees (e.g. an export of ``main`` and
   this checkout); their runs take turns (A, B, A, B, ...) so both see the same load, and
   the load average is printed with each row. The worker runs with ``PYTHONPATH`` and
   working directory set to the tree, so ``stem`` (and ``bench.apps``) come from it.
   ``--without-otel-sdk`` adds each tree's worker as it would run where opentelemetry-sdk
   is not installed (redis-py imports its metrics package whenever it is installed).
3. **Breakdown**: RSS of a fresh interpreter after importing, cumulatively, what a
   worker imports in order (the interpreter, click, trio, redis-py, the OpenTelemetry
   SDK's metrics, stem, the CLI, the worker), and of each package alone; then what is
   left of the draining peak above everything imported: the heap of running (jobs in
   flight, buffers), which no import explains.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from bench.common import private_redis, table
from stem import Stem

ROOT = Path(__file__).resolve().parent.parent
MiB = 2**20

CASES = {
    "async no-op": ("bench.noop_async", ["--concurrency", "50", "--prefetch", "500"]),
    "sync no-op, 2 pool children": (
        "bench.noop_sync",
        ["--pool", "processes", "--concurrency", "2", "--prefetch", "50"],
    ),
}

#: Cumulative import steps of a worker process, in the order it imports them (statements
#: that work on any tree: ``from stem.worker import run`` is what the CLI asks for).
STEPS = [
    ("interpreter (python -c pass)", ""),
    ("+ click", "import click"),
    ("+ trio", "import trio"),
    ("+ redis-py (with the OTel metrics SDK it imports)", "import redis"),
    ("+ stem (package: app, tasks)", "import stem"),
    ("+ stem CLI (root, actors)", "import stem.cli, stem.cli.actors"),
    ("+ the worker (core, broker, observe, runtime)", "from stem.worker import run"),
]

#: What redis-py's import is made of, in a process that has click and trio already (as a
#: worker has): it imports ``redis.asyncio`` (so asyncio) whatever the client used,
#: ``importlib.metadata`` (redis.utils) and, through ``redis.observability.providers``,
#: the OpenTelemetry SDK's metrics package for one type annotation.
REDIS_PARTS = [
    ("click + trio", "import click, trio"),
    ("+ asyncio (redis/__init__ imports redis.asyncio)", "import asyncio"),
    ("+ importlib.metadata (redis.utils)", "import importlib.metadata"),
    (
        "+ opentelemetry.sdk.metrics (redis.observability.providers)",
        "import opentelemetry.sdk.metrics",
    ),
    ("+ redis-py's own modules", "import redis"),
]

#: Each alone in a fresh interpreter.
ALONE = [
    ("trio", "import trio"),
    ("redis-py", "import redis"),
    ("opentelemetry.sdk.metrics", "import opentelemetry.sdk.metrics"),
    ("opentelemetry API (trace, metrics)", "import opentelemetry.trace, opentelemetry.metrics"),
    ("click", "import click"),
    ("psutil", "import psutil"),
    ("hashlib (OpenSSL libcrypto)", "import hashlib"),
    ("stem (package)", "import stem"),
    ("pool child: stem.worker.child + bench.apps", "import stem.worker.child, bench.apps"),
]

_PROBE = """
import sys
{imports}
for line in open("/proc/self/status"):
    if line.startswith("VmRSS:"):
        print(int(line.split()[1]) * 1024, len(sys.modules))
"""


def rss_after(imports: str, tree: Path) -> tuple[float, int]:
    """(RSS MiB, modules loaded) of a fresh interpreter that ran ``imports``."""
    code = _PROBE.format(imports=imports)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(  # noqa: S603  (our own interpreter)
        [sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0]) / MiB, int(out[1])


def median_rss(imports: str, tree: Path, runs: int = 5) -> tuple[float, int]:
    samples = [rss_after(imports, tree) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), samples[0][1]


#: ``--without-otel-sdk``: the worker as it would run where opentelemetry-sdk is not
#: installed (a what-if for the docs; stem itself never hides a package from anyone).
_NO_SDK = (
    "import sys, runpy; sys.modules['opentelemetry.sdk'] = None; "
    "runpy.run_module('stem', run_name='__main__')"
)


def drain(
    url: str, tree: Path, task: str, jobs: int, extra: list[str], *, no_sdk: bool = False
) -> tuple[float, ...]:
    """(worker peak, largest child peak, peak of the sum) MiB while draining ``jobs``."""
    ns = f"rss{time.monotonic_ns()}"
    app = Stem(url, namespace=ns)
    app.enqueue_many(task, [() for _ in range(jobs)])
    start = ["-c", _NO_SDK] if no_sdk else ["-m", "stem"]
    argv = [sys.executable, *start, "--redis-url", url, "--namespace", ns]
    argv += ["--app", "bench.apps:app", "worker", "--burst", *extra]
    env = {**os.environ, "PYTHONPATH": str(tree), "STEM_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(argv, cwd=tree, env=env)  # noqa: S603  (our own stem command)
    worker, child, total = 0.0, 0.0, 0.0
    stop = threading.Event()

    def sample() -> None:
        nonlocal worker, child, total
        while not stop.wait(0.02):
            try:
                me = psutil.Process(proc.pid)
                own = me.memory_info().rss / MiB
                kids = [c.memory_info().rss / MiB for c in me.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            worker, total = max(worker, own), max(total, own + sum(kids))
            child = max(child, *kids, 0.0)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        code = proc.wait(timeout=600)
    finally:
        stop.set()
        sampler.join()
    stats = app.broker.queue_stats("default")
    left = stats.ready + stats.pending + stats.dead
    app.close()
    if code != 0 or left:
        raise SystemExit(f"worker exited {code} with {left} jobs left")
    return worker, child, total


def _cumulative(steps: list[tuple[str, str]], tree: Path) -> list[tuple[str, str, str, str]]:
    """(label, RSS, delta, modules) after each step, every step run after the ones before."""
    rows: list[tuple[str, str, str, str]] = []
    previous, done = 0.0, []
    for label, statement in steps:
        done.append(statement)
        mib, modules = median_rss("\n".join(done), tree)
        delta = f"{mib - previous:+.1f}" if rows else ""
        rows.append((label, f"{mib:.1f}", delta, str(modules)))
        previous = mib
    return rows


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trees", default=str(ROOT), help="source trees, comma-separated")
    parser.add_argument("--no-breakdown", action="store_true")
    parser.add_argument(
        "--without-otel-sdk",
        action="store_true",
        help="add a row per tree: the worker as if opentelemetry-sdk were not installed",
    )
    args = parser.parse_args()
    trees = [Path(t).resolve() for t in args.trees.split(",")]

    with private_redis() as redis_server:
        print(f"redis-server: {redis_server.binary}")
        rows = []
        for case, (task, extra) in CASES.items():
            sides = [(t, False) for t in trees]
            sides += [(t, True) for t in trees] if args.without_otel_sdk else []
            peaks: dict[tuple[Path, bool], list[tuple[float, ...]]] = {s: [] for s in sides}
            loads = []
            for _ in range(args.runs):
                for tree, no_sdk in sides:  # interleaved: A, B, A, B, ...
                    url = redis_server.url
                    peak = drain(url, tree, task, args.jobs, extra, no_sdk=no_sdk)
                    peaks[tree, no_sdk].append(peak)
                    loads.append(_load())
            for tree, no_sdk in sides:
                runs = peaks[tree, no_sdk]
                w, c, t = (statistics.median(p[i] for p in runs) for i in range(3))
                name = f"{tree.name} (no OTel SDK)" if no_sdk else tree.name
                rows.append((case, name, f"{w:.1f}", f"{c:.1f}" if c else "-", f"{t:.1f}"))
            print(f"{case}: load average during the runs: {loads[0]} ... {loads[-1]}")
        header = ("case", "tree", "worker MiB", "child MiB", "worker+children MiB")
        print(f"\npeak RSS, medians of {args.runs} runs of {args.jobs} jobs\n")
        print(table(rows, header))

    if args.no_breakdown:
        return
    for tree in trees:
        print(f"\nbreakdown, tree {tree} (fresh interpreters, medians of 5; load {_load()})\n")
        steps = _cumulative(STEPS, tree)
        print(table(steps, ("cumulative import", "RSS MiB", "delta", "modules")))
        print()
        print(
            table(
                _cumulative(REDIS_PARTS, tree), ("redis-py's share", "RSS MiB", "delta", "modules")
            )
        )
        base, _ = median_rss("", tree)
        alone: list[tuple[str, str, str, str]] = []
        for label, statement in ALONE:
            mib, modules = median_rss(statement, tree)
            alone.append((label, f"{mib:.1f}", f"{mib - base:+.1f}", str(modules)))
        print()
        print(table(alone, ("alone", "RSS MiB", "over the interpreter", "modules")))


if __name__ == "__main__":
    main()
