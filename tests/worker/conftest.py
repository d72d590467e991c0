"""Worker test fixtures: the shared test app on this test's namespace, and helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stem import Stem
from tests.apps import jobs

APP_SPEC = "tests.apps.jobs:app"


@pytest.fixture
def japp(redis_url: str, namespace: str) -> Iterator[Stem]:
    """The module-level test app, pointed at this test's namespace."""
    jobs.app.connect(redis_url, namespace=namespace)
    yield jobs.app
    jobs.app.close()


def wait_until(predicate: Callable[[], object], timeout_s: float = 30.0, what: str = "") -> None:
    """Poll ``predicate`` until true or fail after ``timeout_s`` (a generous deadline)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.02)


def start_worker(
    redis_url: str, namespace: str, root: Path, *extra: str, name: str | None = None
) -> subprocess.Popen[bytes]:
    """A real ``stem worker`` process on the test app (its own process group)."""
    argv = [sys.executable, "-m", "stem", "--redis-url", redis_url, "--namespace", namespace]
    argv += ["--app", APP_SPEC, "worker", *extra]
    if name:
        argv += ["--name", name]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.Popen(argv, cwd=root, env=env, start_new_session=True)


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []
