"""Network black holes between a worker and Redis: short ones cost nothing, long ones
cost duplicates but never a job, and the worker never hangs on a half-open socket.

The worker reaches Redis through a :class:`Blackhole` proxy; the reclaimer, a second
worker and the test itself talk to Redis directly, so they see the stale leases.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stem import JobState
from stem.embedded import EmbeddedRedis
from stem.worker.lease import LeaseTiming
from tests.apps import lease12
from tests.worker.blackhole import Blackhole
from tests.worker.conftest import lines, wait_until

Procs = list[subprocess.Popen[bytes]]
APP = "tests.apps.lease12:app"
TIMING = LeaseTiming(lease12.app.lease_s)


@pytest.fixture
def proxy(redis_server: EmbeddedRedis) -> Iterator[Blackhole]:
    hole = Blackhole(redis_server.port)
    yield hole
    hole.close()


@pytest.fixture
def app12(redis_url: str, namespace: str) -> Iterator[None]:
    lease12.app.connect(redis_url, namespace=namespace)
    yield
    lease12.app.close()


def actor(url: str, namespace: str, root: Path, *argv: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "stem", "--redis-url", url, "--namespace", namespace]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.Popen([*cmd, "--app", APP, *argv], cwd=root, env=env, start_new_session=True)


def test_a_black_hole_shorter_than_the_survivable_partition_runs_every_job_once(
    app12: None,
    proxy: Blackhole,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    procs: Procs,
) -> None:
    log = tmp_path / "runs.txt"
    outage_s = TIMING.survivable_partition_s - 1.5  # 4.5 s: longer than a renewal interval
    assert TIMING.interval_s < outage_s
    handles = lease12.arecord.enqueue_many([(str(log), str(i), 15.0) for i in range(10)])
    procs.append(actor(redis_url, namespace, repo_root, "reclaim", "--interval-s", "0.2"))
    far = actor(proxy.url, namespace, repo_root, "worker", "--concurrency", "10", "--name", "far")
    procs.append(far)
    wait_until(lambda: len(lines(log)) == 10, what="all ten jobs to start")
    # An idle worker on the near side runs whatever the reclaimer takes back.
    procs.append(actor(redis_url, namespace, repo_root, "worker", "--name", "near"))
    with proxy.swallowing():
        time.sleep(outage_s)  # the length of the outage, not a synchronisation
    assert [h.result(timeout_s=60) for h in handles] == [str(i) for i in range(10)]
    assert sorted(lines(log), key=int) == [str(i) for i in range(10)]
    assert [h.info().deliveries for h in handles] == [1] * 10  # type: ignore[union-attr]


def test_a_black_hole_longer_than_the_lease_loses_no_job_and_the_worker_recovers(
    app12: None,
    proxy: Blackhole,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    procs: Procs,
) -> None:
    log = tmp_path / "runs.txt"
    handles = lease12.arecord.enqueue_many([(str(log), str(i), 2.0) for i in range(10)])
    procs.append(actor(redis_url, namespace, repo_root, "reclaim", "--interval-s", "0.2"))
    far = actor(proxy.url, namespace, repo_root, "worker", "--concurrency", "10", "--name", "far")
    procs.append(far)
    wait_until(lambda: len(lines(log)) == 10, what="all ten jobs to start")
    with proxy.swallowing():
        # Results, renewals and fetches all vanish; the reclaimer takes the jobs back.
        wait_until(
            lambda: lease12.app.broker.queue_stats("default").pending == 0,
            timeout_s=30,
            what="the reclaimer to take the jobs back",
        )
    healed = time.monotonic()
    after = lease12.arecord.enqueue_many([(str(log), f"after{i}", 0.0) for i in range(5)])
    # Bound: one 30 s socket timeout of the main connection, then a fresh connection.
    assert [h.result(timeout_s=45) for h in after] == [f"after{i}" for i in range(5)]
    assert [h.result(timeout_s=45) for h in handles] == [str(i) for i in range(10)]
    print(f"worker recovered {time.monotonic() - healed:.1f} s after the network healed")
    assert {str(i) for i in range(10)} <= set(lines(log))
    assert all(h.status() is JobState.SUCCEEDED for h in handles)
    assert far.poll() is None
