"""Helpers for tests that run beats: real beat processes, polling, the jobs they enqueued."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import trio

from stem import Stem
from tests.worker.conftest import wait_until

__all__ = ["wait_until"]  # the beat tests import it from here

# A beat process on the test's Redis and namespace (the root CLI is not needed for it).
_BEAT = """
import sys
from stem import Stem
from stem.beat.service import run
url, namespace, config, name = sys.argv[1:5]
sys.exit(run(Stem(url, namespace=namespace), config_path=config or None, name=name))
"""


def start_beat(
    redis_url: str,
    namespace: str,
    root: Path,
    log: Path,
    *,
    config: Path | None,
    name: str,
    through_cli: bool = False,
) -> subprocess.Popen[bytes]:
    """A real beat process (own process group), its stderr in ``log``.

    ``through_cli`` runs ``python -m stem ... beat``; otherwise ``stem.beat.service.run``
    is called directly (the same code, without the root CLI's option handling).
    """
    argv = [sys.executable, "-c", _BEAT, redis_url, namespace, str(config or ""), name]
    if through_cli:
        argv = [sys.executable, "-m", "stem", "--redis-url", redis_url, "--namespace", namespace]
        argv += ["beat", "--name", name] + (["--config", str(config)] if config else [])
    env = {**os.environ, "PYTHONPATH": str(root), "STEM_LOG_LEVEL": "INFO"}
    with log.open("wb") as err:
        return subprocess.Popen(argv, cwd=root, env=env, stderr=err, start_new_session=True)


def stop(procs: list[subprocess.Popen[bytes]], timeout_s: float = 30.0) -> list[int]:
    """SIGTERM every live process, wait for all; return their exit codes."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    return [p.wait(timeout=timeout_s) for p in procs]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def wait_for(predicate: Callable[[], object], timeout_s: float = 30.0) -> None:
    """``wait_until`` for trio tests: poll without blocking the event loop."""
    with trio.fail_after(timeout_s):
        while not predicate():
            await trio.sleep(0.02)


def job_ids(app: Stem, queue: str = "default") -> list[str]:
    """Ids of every job on ``queue``'s ready streams, in stream order (no worker runs)."""
    client = app.broker.client
    out: list[str] = []
    for stream in app.broker.keys.queue(queue).streams():
        out += [fields[b"id"].decode() for _, fields in client.xrange(stream)]
    return out


def ticks(app: Stem, entry: str, queue: str = "default") -> list[int]:
    """The ticks (epoch ms) of ``entry`` enqueued on ``queue``, one per job, sorted."""
    prefix = f"beat:{entry}:"
    return sorted(int(j.removeprefix(prefix)) for j in job_ids(app, queue) if j.startswith(prefix))


def log_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
