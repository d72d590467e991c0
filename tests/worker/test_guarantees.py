"""The worker's guarantees, checked with real worker processes and signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from stem import JobState, Stem
from tests.apps import jobs
from tests.worker.conftest import lines, start_worker, wait_until

Procs = list[subprocess.Popen[bytes]]


def reclaimer(redis_url: str, namespace: str, root: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "stem", "--redis-url", redis_url, "--namespace", namespace]
    argv += ["--app", "tests.apps.jobs:app", "reclaim"]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.Popen(argv, cwd=root, env=env, start_new_session=True)


def test_a_job_ten_times_longer_than_the_lease_runs_exactly_once_with_two_workers(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    procs: Procs,
) -> None:
    log = tmp_path / "runs.txt"
    # lease 1 s (tests/apps/jobs.py); the job takes 10 s; a reclaimer runs the whole time.
    handle = jobs.record.enqueue(str(log), "long", 10.0)
    procs.append(reclaimer(redis_url, namespace, repo_root))
    for i in range(2):
        procs.append(
            start_worker(redis_url, namespace, repo_root, "--concurrency", "1", name=f"w{i}")
        )
    assert handle.result(timeout_s=60) == "long"
    assert lines(log) == ["long"]
    assert handle.info().deliveries == 1  # type: ignore[union-attr]


def test_an_async_task_that_blocks_the_event_loop_keeps_its_lease(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    procs: Procs,
) -> None:
    log = tmp_path / "runs.txt"
    handle = jobs.blocks_loop.enqueue(str(log), "blocked", 4.0)
    procs.append(reclaimer(redis_url, namespace, repo_root))
    procs.append(start_worker(redis_url, namespace, repo_root, name="w0"))
    procs.append(start_worker(redis_url, namespace, repo_root, name="w1"))
    assert handle.result(timeout_s=60) == "blocked"
    assert lines(log) == ["blocked"]


def test_a_job_whose_worker_is_sigkilled_completes_on_another_worker(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    procs: Procs,
) -> None:
    log = tmp_path / "runs.txt"
    handle = jobs.record.enqueue(str(log), "victim", 3.0)
    victim = start_worker(redis_url, namespace, repo_root, name="victim")
    procs.append(victim)
    wait_until(lambda: lines(log) == ["victim"], what="the job to start")
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    procs.append(reclaimer(redis_url, namespace, repo_root))
    procs.append(start_worker(redis_url, namespace, repo_root, name="rescuer"))
    assert handle.result(timeout_s=60) == "victim"
    assert lines(log) == ["victim", "victim"]  # at-least-once: ran again after a real failure


def test_a_restarted_worker_recovers_its_own_jobs_at_once(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    procs: Procs,
) -> None:
    log = tmp_path / "runs.txt"
    handle = jobs.record.enqueue(str(log), "mine", 2.0)
    first = start_worker(redis_url, namespace, repo_root, name="same-name")
    procs.append(first)
    wait_until(lambda: lines(log) == ["mine"], what="the job to start")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    procs.append(start_worker(redis_url, namespace, repo_root, name="same-name"))  # no reclaimer
    assert handle.result(timeout_s=60) == "mine"


def test_two_workers_never_hold_more_than_concurrency_plus_prefetch_and_both_get_work(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    procs: Procs,
) -> None:
    handles = jobs.arecord.enqueue_many([("/dev/null", str(i), 0.05) for i in range(100)])
    for name in ("a", "b"):
        procs.append(
            start_worker(
                redis_url, namespace, repo_root, "--concurrency", "2", "--prefetch", "2", name=name
            )
        )
    broker = japp.broker
    stream = broker.keys.queue("default").stream(0)
    peak: Counter[str] = Counter()
    seen: set[str] = set()
    deadline = time.monotonic() + 120
    while any(h.status() is not JobState.SUCCEEDED for h in handles[-5:]) or (
        broker.queue_stats("default").ready + broker.queue_stats("default").pending
    ):
        for c in broker.client.xinfo_consumers(stream, "workers"):
            name = c["name"].decode()
            peak[name] = max(peak[name], int(c["pending"]))
            if c["pending"]:
                seen.add(name.split("/")[-1])
        assert time.monotonic() < deadline, "jobs did not drain"
    assert max(peak.values()) <= 4
    assert seen == {"a", "b"}
    assert all(h.status() is JobState.SUCCEEDED for h in handles)


def test_sigterm_lets_running_jobs_finish_and_exits_zero(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    procs: Procs,
) -> None:
    log = tmp_path / "runs.txt"
    handles = jobs.arecord.enqueue_many([(str(log), str(i), 2.0) for i in range(10)])
    worker = start_worker(
        redis_url, namespace, repo_root, "--concurrency", "10", "--stop-timeout-s", "25"
    )
    procs.append(worker)
    wait_until(lambda: len(lines(log)) == 10, what="all ten jobs to start")
    os.killpg(worker.pid, signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert [h.status() for h in handles] == [JobState.SUCCEEDED] * 10


def test_a_second_sigint_stops_at_once_and_hands_running_jobs_back(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    procs: Procs,
) -> None:
    log = tmp_path / "runs.txt"
    handles = jobs.arecord.enqueue_many([(str(log), str(i), 30.0) for i in range(3)])
    worker = start_worker(redis_url, namespace, repo_root, "--concurrency", "3")
    procs.append(worker)
    wait_until(lambda: len(lines(log)) == 3, what="the jobs to start")
    os.kill(worker.pid, signal.SIGINT)
    time.sleep(0.2)  # two separate signals, not one coalesced delivery
    os.kill(worker.pid, signal.SIGINT)
    assert worker.wait(timeout=20) == 0
    assert [h.status() for h in handles] == [JobState.QUEUED] * 3
    assert japp.broker.queue_stats("default").ready == 3


def test_burst_mode_exits_zero_when_the_queues_are_empty(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path
) -> None:
    handles = jobs.add.enqueue_many([(i, i) for i in range(20)])
    worker = start_worker(redis_url, namespace, repo_root, "--burst")
    assert worker.wait(timeout=60) == 0
    assert [h.result(timeout_s=1) for h in handles] == [2 * i for i in range(20)]


def test_a_running_worker_is_listed_with_its_heartbeat(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    procs: Procs,
) -> None:
    procs.append(
        start_worker(redis_url, namespace, repo_root, "--queues", "default,other", name="hb")
    )
    wait_until(japp.broker.workers, what="a heartbeat")
    [record] = japp.broker.workers()
    assert record["id"].endswith("/hb") or record["id"] == "hb"
    assert (record["queues"], record["concurrency"]) == (["default", "other"], 10)
