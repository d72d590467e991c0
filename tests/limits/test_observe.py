"""`stem observe queues` (and `stem limit list`) say when throttled jobs wait and no rate
limiter runs: real `stem` processes (the limiter, the commands), real Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from stem import Stem
from tests.apps import limited
from tests.limits.conftest import APP_SPEC, start
from tests.worker.conftest import wait_until

Procs = list[subprocess.Popen[bytes]]


def observe(redis_url: str, namespace: str, root: Path, *extra: str) -> tuple[str, str]:
    """Run `stem observe queues` as its own process: (stdout, stderr)."""
    return stem_cli(redis_url, namespace, root, "observe", "queues", *extra)


def stem_cli(redis_url: str, namespace: str, root: Path, *command: str) -> tuple[str, str]:
    """Run a `stem` command as its own process: (stdout, stderr)."""
    argv = [sys.executable, "-m", "stem", "--redis-url", redis_url, "--namespace", namespace]
    argv += ["--app", APP_SPEC, *command]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, timeout=60, check=True)
    return done.stdout.decode(), done.stderr.decode()


def default_queue(redis_url: str, namespace: str, root: Path) -> dict[str, Any]:
    docs = json.loads(observe(redis_url, namespace, root, "--json")[0])
    [doc] = [d for d in docs if d["queue"] == "default"]
    return doc  # type: ignore[no-any-return]


def test_observe_queues_says_the_limiter_is_missing_while_throttled_jobs_wait(
    lapp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs
) -> None:
    limited.export.enqueue_many([(i,) for i in range(5)])
    specs = tuple(lapp.limit_specs().values())
    held = lapp.broker.fetch("default", "here", 10, specs)  # holds both slots; 3 wait
    assert len(held) == 2

    out, err = observe(redis_url, namespace, repo_root)
    assert "throttled=3 limiter=missing" in out
    assert "no rate limiter is running: throttled jobs (3 in default)" in err
    _, err = stem_cli(redis_url, namespace, repo_root, "limit", "list")
    assert "no rate limiter is running: throttled jobs (3 in default) wait" in err

    limiter = start(redis_url, namespace, repo_root, "ratelimit")
    procs.append(limiter)
    wait_until(
        lambda: default_queue(redis_url, namespace, repo_root)["limiter"] == "up",
        what="observe to see the rate limiter",
    )
    out, err = observe(redis_url, namespace, repo_root)
    assert ("throttled=3 limiter=up" in out, "warning" in err) == (True, False)

    os.killpg(limiter.pid, signal.SIGTERM)  # a clean stop forgets its presence at once
    assert limiter.wait(timeout=30) == 0
    assert default_queue(redis_url, namespace, repo_root)["limiter"] == "missing"


def test_observe_queues_shows_no_limiter_column_value_when_nothing_waits(
    lapp: Stem, redis_url: str, namespace: str, repo_root: Path
) -> None:
    limited.free.enqueue_many([(i,) for i in range(2)])

    out, err = observe(redis_url, namespace, repo_root)

    assert out.splitlines() == [
        "default ready=2 delayed=0 pending=0 dead=0 paused=no throttled=0 limiter=-"
    ]
    assert err == ""
