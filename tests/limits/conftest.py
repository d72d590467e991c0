"""Real workers, reclaimer and rate limiter on the limited test app."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stem import Stem
from tests.apps import limited

APP_SPEC = "tests.apps.limited:app"


@pytest.fixture
def lapp(redis_url: str, namespace: str) -> Iterator[Stem]:
    """The limited test app, pointed at this test's namespace."""
    limited.app.connect(redis_url, namespace=namespace)
    yield limited.app
    limited.app.close()


def start(redis_url: str, namespace: str, root: Path, *command: str) -> subprocess.Popen[bytes]:
    """A real ``stem`` actor process on the limited app (its own process group)."""
    argv = [sys.executable, "-m", "stem", "--redis-url", redis_url, "--namespace", namespace]
    argv += ["--app", APP_SPEC, *command]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.Popen(argv, cwd=root, env=env, start_new_session=True)
