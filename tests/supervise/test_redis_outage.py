"""Every actor rides out Redis going away (operations.md, "Redis unreachable").

Each actor keeps running and keeps touching the heartbeat file its supervisor watches
(so ``stem supervise`` does not take the outage for a hang and replace it), and works
again once Redis is back. The actors run as real processes, as ``stem supervise`` would
start them (the heartbeat file named in ``SUPERVISOR_HEARTBEAT_FILE``), against a private
redis-server that the test stops and starts again on the same port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stem.embedded import EmbeddedRedis
from supervisor import HEARTBEAT_FILE_ENV
from tests.apps import jobs
from tests.worker.conftest import APP_SPEC, wait_until

ACTORS = ("worker", "reclaim", "ratelimit", "beat")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server of this test alone (AOF on, so its data outlives a restart)."""
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True).start()
    yield server
    server.stop()


def actor(
    command: str, url: str, namespace: str, root: Path, beat_file: Path
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "stem", "--redis-url", url, "--namespace", namespace]
    argv += ["--app", APP_SPEC, command]
    env = {**os.environ, "PYTHONPATH": str(root), HEARTBEAT_FILE_ENV: str(beat_file)}
    return subprocess.Popen(argv, cwd=root, env=env, start_new_session=True)


def test_every_actor_stays_up_and_keeps_its_heartbeat_while_redis_is_unreachable(
    own_redis: EmbeddedRedis,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    beats = {name: tmp_path / f"{name}.beat" for name in ACTORS}
    running = {
        name: actor(name, own_redis.url, namespace, repo_root, beats[name]) for name in ACTORS
    }
    procs.extend(running.values())
    wait_until(lambda: all(b.exists() for b in beats.values()), what="every actor's loop")

    own_redis.stop()
    down_at = time.time()
    # Each touches its heartbeat again well after Redis went away: its loop still turns.
    wait_until(
        lambda: all(b.stat().st_mtime > down_at + 2 for b in beats.values()),
        what="every actor to touch its heartbeat during the outage",
    )
    assert {name: p.poll() for name, p in running.items()} == dict.fromkeys(ACTORS)

    own_redis.start()
    jobs.app.connect(own_redis.url, namespace=namespace)
    try:
        assert jobs.add.enqueue(2, 3).result(timeout_s=30) == 5  # the worker works again
    finally:
        jobs.app.close()
    for p in running.values():
        os.killpg(p.pid, signal.SIGTERM)
    assert {name: p.wait(timeout=30) for name, p in running.items()} == dict.fromkeys(ACTORS, 0)
