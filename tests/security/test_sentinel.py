"""Sentinel: every stem component through a ``redis+sentinel://`` URL, across a failover.

A real master, a replica and a sentinel (``redis-server --sentinel``) on loopback ports,
with short ``down-after-milliseconds`` and ``failover-timeout``. Workers and a reclaimer run
as real processes on the Sentinel URL; ``SENTINEL FAILOVER`` promotes the replica in the
middle of the drain; every job must end succeeded (duplicates are allowed and counted).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from stem import JobState, Stem
from stem.broker.connection import open_client
from stem.embedded import free_port
from stem.errors import ConfigError
from tests.security.servers import ROOT, answers, start_redis

JOBS = 200
SERVICE = "mymaster"


@dataclass
class Deployment:
    master_port: int
    replica_port: int
    sentinel_port: int

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}/0"

    def sentinel(self) -> redis.Redis:
        return redis.Redis(port=self.sentinel_port, decode_responses=True)

    def master_addr(self) -> tuple[str, int]:
        with self.sentinel() as s:
            host, port = s.sentinel_get_master_addr_by_name(SERVICE)
        return host, int(port)


def _server_args(port: int, data: Path) -> list[str]:
    data.mkdir()
    return ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(data)]


def _replica_known(deployment: Deployment) -> bool:
    with deployment.sentinel() as s:
        replicas = s.sentinel_slaves(SERVICE)
    return any(r["port"] == deployment.replica_port and r["is_slave"] for r in replicas)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(free_port(), free_port(), free_port())
    replica_args = _server_args(d.replica_port, tmp_path / "replica")
    replica_args += ["--replicaof", "127.0.0.1", str(d.master_port)]
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {d.sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {d.master_port} 1\n"
        f"sentinel down-after-milliseconds {SERVICE} 1000\n"
        f"sentinel failover-timeout {SERVICE} 5000\n"
    )

    def synced() -> bool:
        with redis.Redis(port=d.replica_port) as r:
            return bool(r.info("replication").get("master_link_status") == "up")

    with (
        start_redis(
            _server_args(d.master_port, tmp_path / "master"),
            answers(lambda: redis.Redis(port=d.master_port)),
        ),  # fmt: skip
        start_redis(replica_args, synced),
        start_redis([str(conf), "--sentinel"], lambda: _safe(_replica_known, d)),
    ):
        yield d


def _safe(check: Callable[[Deployment], bool], deployment: Deployment) -> bool:
    try:
        return check(deployment)
    except redis.RedisError:
        return False


def _old_master_demoted(deployment: Deployment) -> bool:
    with redis.Redis(port=deployment.master_port, decode_responses=True) as old:
        info = old.info("replication")
    return bool(info["role"] == "slave" and info.get("master_link_status") == "up")


def _start(url: str, namespace: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STEM_LOG_LEVEL": "WARNING"}
    argv = [sys.executable, "-m", "stem.cli", "--redis-url", url, "--namespace", namespace]
    argv += ["--app", "tests.apps.jobs:app", *args]
    return subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_drain_through_sentinel_loses_nothing_across_a_failover(
    deployment: Deployment, tmp_path: Path, namespace: str
) -> None:
    runs = tmp_path / "runs.txt"
    app = Stem(deployment.url, namespace=namespace)
    handles = [
        app.enqueue("tests.apps.jobs.record", [str(runs), f"job{i}", 0.05]) for i in range(JOBS)
    ]
    old_master = deployment.master_addr()
    actors = [_start(deployment.url, namespace, "worker", "--concurrency", "2")
              for _ in range(2)]  # fmt: skip
    actors.append(_start(deployment.url, namespace, "reclaim", "--interval-s", "0.5"))
    try:
        _wait(lambda: runs.exists() and len(runs.read_text().split()) >= JOBS // 4, 30, "runs")
        with deployment.sentinel() as s:
            s.sentinel_failover(SERVICE)
        _wait(lambda: deployment.master_addr() != old_master, 20, "the failover")
        # Until the sentinel demotes it, the old master keeps taking writes that its resync
        # from the new master then discards (Redis replication is asynchronous): judge the
        # drain only once the old master is a replica in sync with the new one.
        _wait(lambda: _safe(_old_master_demoted, deployment), 20, "the old master to follow")

        def settled() -> bool:
            states = [h.status() for h in handles]
            return all(state in (JobState.SUCCEEDED, JobState.DEAD) for state in states)

        _wait(lambda: _safe(lambda _: settled(), deployment), 45, "every job to settle")
        assert [a.poll() for a in actors] == [None] * len(actors), "an actor died"
    finally:
        for actor in actors:
            if actor.poll() is None:
                os.killpg(actor.pid, signal.SIGTERM)
        for actor in actors:
            actor.wait(timeout=30)
        app.close()
    counts = Counter(runs.read_text().split())
    states = Counter(h.status() for h in handles)
    duplicates = sum(counts.values()) - len(counts)
    print(f"failover drain: {dict(states)}, {duplicates} duplicate runs")
    assert states == {JobState.SUCCEEDED: JOBS}
    assert set(counts) == {f"job{i}" for i in range(JOBS)}
    assert [h.result(timeout_s=1) for h in handles] == [f"job{i}" for i in range(JOBS)]


def test_the_cli_works_through_a_sentinel_url(deployment: Deployment, namespace: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "stem.cli", "--redis-url", deployment.url]
    done = subprocess.run(
        [*argv, "--namespace", namespace, "enqueue", "t"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    with redis.Redis(port=deployment.master_port) as master:
        assert master.exists(f"{namespace}:{{default}}:job:{done.stdout.strip()}") == 1


def test_no_reachable_sentinel_is_one_line_and_exit_3() -> None:
    url = f"redis+sentinel://127.0.0.1:{free_port()}/{SERVICE}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "stem.cli", "--redis-url", url, "observe", "queues"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 3
    [line] = done.stderr.splitlines()
    assert line.startswith(f"stem: error: cannot reach Redis at {url}: No master found for ")


def test_a_deadline_client_keeps_its_deadline_when_the_sentinels_never_answer() -> None:
    # Sentinels that accept connections and never reply (a half-open network): finding
    # the master must not take each sentinel's timeout times redis-py's retries (a 0.5 s
    # lease-renewal client took 30 s), or a worker's leases lapse while it waits.
    mute = []
    for _ in range(3):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # connections complete in the backlog; nothing reads them
        mute.append(listener)
    hosts = ",".join(f"127.0.0.1:{s.getsockname()[1]}" for s in mute)
    client = open_client(f"redis+sentinel://{hosts}/{SERVICE}", deadline_s=0.5)
    try:
        start = time.monotonic()
        with pytest.raises(redis.RedisError, match="No master found"):
            client.ping()
        assert time.monotonic() - start < 0.5 + 1.0  # the deadline, and slack for a slow CI
    finally:
        client.close()
        for listener in mute:
            listener.close()


def test_a_deadline_client_keeps_its_deadline_on_the_master_whatever_the_url_asks(
    deployment: Deployment,
) -> None:
    # Found in review: ?socket_timeout= in a Sentinel URL replaced the deadline on the
    # master's connections (a renewal then waited 5 s on a master that answered nothing).
    client = open_client(f"{deployment.url}?socket_timeout=5", deadline_s=0.5)
    master = redis.Redis(*deployment.master_addr())
    try:
        client.ping()  # connected to the master
        master.client_pause(3000)  # it answers nothing for 3 s
        start = time.monotonic()
        with pytest.raises(redis.RedisError):
            client.ping()
        assert time.monotonic() - start < 0.5 + 1.0  # the deadline, and slack for a slow CI
    finally:
        client.close()
        master.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://127.0.0.1:1", "expected /service_name or /service_name/db"),
        ("redis+sentinel://127.0.0.1:1/m/x", "expected /service_name or /service_name/db"),
        ("redis+sentinel://127.0.0.1/m", "expected host:port[,host:port...], got '127.0.0.1'"),
        ("redis+sentinel://h:1/m?sentinel_pasword=x", "unknown parameter 'sentinel_pasword'"),
    ],
)
def test_a_malformed_sentinel_url_is_a_config_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        open_client(url)
