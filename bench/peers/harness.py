"""Running the systems: drivers, worker processes, the counter, RSS (harness side).

Runs in the repository's ``.venv``. Every process it starts gets its own session (process
group) and is stopped by that group's id: SIGTERM, then SIGKILL after a grace period, so a
worker's pool children never outlive a measurement.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import psutil
import redis

from bench.common import percentile
from bench.peers import job
from bench.peers.systems import ROOT, System

START_TIMEOUT_S = 60.0  # worker start-up (imports, connecting) until the first completion
STALL_TIMEOUT_S = 30.0  # no completion for this long: the system is stuck
STOP_GRACE_S = 20.0

T = TypeVar("T")


class PeerFailed(Exception):
    """One system could not be measured; the message goes into its table cell."""


def python_of(system: System) -> Path:
    return system.env_dir / "bin" / "python"


def unavailable(system: System) -> str | None:
    """Why ``system`` cannot run here, or ``None`` when its environment is installed."""
    failed = system.env_dir / "SETUP_FAILED"
    if failed.exists():
        return "not installed: " + failed.read_text().strip()
    if not python_of(system).exists():
        return f"not installed: run `python -m bench.peers setup {system.key}`"
    return None


def environ(url: str, system: System) -> dict[str, str]:
    bin_dir = str(system.env_dir / "bin")
    return {
        **os.environ,
        job.URL_ENV: url,
        "PYTHONPATH": str(ROOT),
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "VIRTUAL_ENV": str(system.env_dir),
        "PYTHONUNBUFFERED": "1",
    }


def version(system: System) -> str:
    """The version the table shows: the peer's, stem's with its commit, or redis-py's."""
    code = f"import importlib.metadata as m; print(m.version({system.dist!r}))"
    done = subprocess.run(  # noqa: S603  (the environment's own python)
        [str(python_of(system)), "-c", code], capture_output=True, text=True, check=False
    )
    found = done.stdout.strip() or "?"
    if system.dist == "stem-jobs":
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607  (the checkout's git)
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return f"{found} ({head.stdout.strip() or '?'})"
    return f"redis-py {found}" if system.dist == "redis" else found


def run_driver(system: System, url: str, *args: str, timeout_s: float = 600) -> dict[str, Any]:
    """Run ``bench.peers.driver`` in the system's environment; its JSON reply."""
    argv = [str(python_of(system)), "-m", "bench.peers.driver", system.app, *args]
    try:
        done = subprocess.run(  # noqa: S603  (argv built here from fixed words)
            argv,
            cwd=ROOT,
            env=environ(url, system),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PeerFailed(f"producer `{args[0]}` took over {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise PeerFailed(f"producer `{args[0]}` failed: {tail[:200]}")
    reply: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return reply


def tree_read(procs: list[subprocess.Popen[bytes]], read: Callable[[psutil.Process], T]) -> list[T]:
    """``read`` of each process started and each of its children alive now (one that ends
    meanwhile is left out: a child that ends between two readings is not counted)."""
    out: list[T] = []
    for p in procs:
        try:
            root = psutil.Process(p.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in tree:
            try:
                out.append(read(proc))
            except psutil.NoSuchProcess:
                continue
    return out


def _tree_rss(procs: list[subprocess.Popen[bytes]]) -> float:
    return sum(tree_read(procs, lambda proc: proc.memory_info().rss)) / 2**20


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + STOP_GRACE_S
    for p in procs:
        with suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        with suppress(ProcessLookupError):  # the group too: pool children left behind
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


class Workers:
    """Worker processes started with the system's own CLI; ``peak_rss_mib`` of their trees."""

    def __init__(self, procs: list[subprocess.Popen[bytes]], log: Path) -> None:
        self.procs = procs
        self.log = log
        self.peak_rss_mib = 0.0

    def check_alive(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                tail = self.log.read_text(errors="replace").strip().splitlines() or ["?"]
                raise PeerFailed(f"worker exited ({p.returncode}): {tail[-1][:200]}")


@contextmanager
def open_workers(system: System, url: str, processes: int, log: Path) -> Iterator[Workers]:
    """Start ``processes`` worth of the system's workers; stop them all on exit."""
    procs: list[subprocess.Popen[bytes]] = []
    with log.open("ab") as out:
        for argv in system.worker(processes, url):
            exe = system.env_dir / "bin" / argv[0]
            procs.append(
                subprocess.Popen(  # noqa: S603  (the system's own worker command)
                    [str(exe), *argv[1:]],
                    cwd=ROOT,
                    env=environ(url, system),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    workers = Workers(procs, log)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            workers.peak_rss_mib = max(workers.peak_rss_mib, _tree_rss(procs))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield workers
    finally:
        stop.set()
        sampler.join()
        _stop(procs)


def wait_count(
    client: Any, target: int, workers: Workers, done_before: int = 0
) -> tuple[float, float]:
    """Poll the counter until it reaches ``target``: (first, last) completion times, from
    ``time.perf_counter``, of the jobs after the ``done_before`` already counted. Raises
    ``PeerFailed`` when the workers die, never start, or stall.
    """
    start = time.perf_counter()
    first: float | None = None
    seen, seen_at, next_check = -1, start, start
    while True:
        now = time.perf_counter()
        count = int(client.get(job.COUNTER) or 0)
        if count >= target:
            return (first if first is not None else now), now
        if count > seen:
            seen, seen_at = count, now
            if first is None and count > done_before:
                first = now
        if now >= next_check:  # a dead worker fails the system now, not at the timeout
            workers.check_alive()
            next_check = now + 0.1
        limit = START_TIMEOUT_S if first is None else STALL_TIMEOUT_S
        if now - seen_at > limit:
            raise PeerFailed(f"stuck at {count:,} of {target:,} jobs for {limit:.0f} s")
        time.sleep(0.0005)  # ~1 ms resolution over drains of a second or more


def latencies_ms(client: Any) -> list[float]:
    pairs = (raw.split() for raw in client.lrange(job.LATENCIES, 0, -1))
    return [(float(done) - float(sent)) * 1000 for sent, done in pairs]


def measure(
    system: System, url: str, jobs: int, rate: int, seconds: float, logs: Path
) -> dict[str, float]:
    """One rep of every metric for ``system``; keys as ``report.METRICS`` (``bulk`` only
    when the system has a bulk API; no latency when one process drains slower than
    ``rate``: the jobs would queue up, and the figure would measure the run's length)."""
    client: Any = redis.Redis.from_url(url)
    out: dict[str, float] = {}
    log = logs / f"{system.app}.log"
    client.flushall()
    out["single"] = jobs / run_driver(system, url, "single", str(jobs))["seconds"]
    with open_workers(system, url, 1, log) as workers:
        first, last = wait_count(client, jobs, workers)
        out["drain1"] = (jobs - 1) / max(last - first, 1e-6)
        out["rss_mib"] = workers.peak_rss_mib
        if out["drain1"] >= rate:  # else the latency is the backlog's growth: not measured
            sent = run_driver(system, url, "paced", str(rate), str(seconds))["sent"]
            wait_count(client, jobs + sent, workers)
            lat = latencies_ms(client)
            out["p50_ms"], out["p99_ms"] = percentile(lat, 50), percentile(lat, 99)
    client.flushall()
    fill = run_driver(system, url, "fill", str(jobs))
    if fill["bulk"]:
        out["bulk"] = jobs / fill["seconds"]
    with open_workers(system, url, 2, log) as workers:
        first, last = wait_count(client, jobs, workers)
        out["drain2"] = (jobs - 1) / max(last - first, 1e-6)
    client.flushall()
    client.close()
    return out
